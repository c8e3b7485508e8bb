//! Result lines (one per run) and the markdown report: medians of the runs, ratios between targets, and
//! the targets (reported, not asserted).

use crate::load::{Outcome, Workload};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Column names of a result line (tab-separated).
pub const HEADER: &str = "#target\tworkload\tconns\trun\trequests\twindow_s\trps\tp50_us\tp99_us\tnon2xx\ttransport_errors\thwm_kib\toffered\tloadavg";

/// One run's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLine {
    /// `stsd`, `moto`, `ceiling`, `stsd-scale` …
    pub target: String,
    /// Workload key.
    pub workload: String,
    /// Connections.
    pub conns: usize,
    /// Run number (1-based).
    pub run: usize,
    /// Answers in the window.
    pub requests: u64,
    /// Window seconds.
    pub window_s: f64,
    /// Answers per second.
    pub rps: f64,
    /// Median latency, µs.
    pub p50_us: u32,
    /// 99th percentile latency, µs.
    pub p99_us: u32,
    /// Non-2xx answers.
    pub non2xx: u64,
    /// Requests without an answer.
    pub transport_errors: u64,
    /// Server peak RSS during the run (KiB; 0 when unknown).
    pub hwm_kib: u64,
    /// MFA codes available (0 for other workloads).
    pub offered: u64,
    /// 1-minute load average when the run started.
    pub loadavg: f64,
}

impl RunLine {
    /// A line from a run's outcome.
    #[allow(clippy::too_many_arguments)]
    pub fn from_outcome(
        target: &str,
        workload: Workload,
        conns: usize,
        run: usize,
        o: &Outcome,
        hwm_kib: Option<u64>,
        loadavg: f64,
    ) -> RunLine {
        RunLine {
            target: target.to_owned(),
            workload: workload.key().to_owned(),
            conns,
            run,
            requests: o.requests,
            window_s: o.window_secs,
            rps: o.rps(),
            p50_us: o.quantile_us(0.50),
            p99_us: o.quantile_us(0.99),
            non2xx: o.non2xx,
            transport_errors: o.transport_errors,
            hwm_kib: hwm_kib.unwrap_or(0),
            offered: o.offered.unwrap_or(0),
            loadavg,
        }
    }

    /// The tab-separated line.
    pub fn to_line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{:.3}\t{:.1}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.2}",
            self.target,
            self.workload,
            self.conns,
            self.run,
            self.requests,
            self.window_s,
            self.rps,
            self.p50_us,
            self.p99_us,
            self.non2xx,
            self.transport_errors,
            self.hwm_kib,
            self.offered,
            self.loadavg
        )
    }

    /// Parses [`RunLine::to_line`].
    ///
    /// # Errors
    /// Wrong number of fields or a field that is not a number.
    pub fn parse(line: &str) -> anyhow::Result<RunLine> {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 14 {
            bail!("expected 14 tab-separated fields, got {}", f.len());
        }
        let n = |i: usize| -> anyhow::Result<u64> {
            f[i].parse()
                .with_context(|| format!("field {}: {:?}", i + 1, f[i]))
        };
        let x = |i: usize| -> anyhow::Result<f64> {
            f[i].parse()
                .with_context(|| format!("field {}: {:?}", i + 1, f[i]))
        };
        Ok(RunLine {
            target: f[0].to_owned(),
            workload: f[1].to_owned(),
            conns: usize::try_from(n(2)?)?,
            run: usize::try_from(n(3)?)?,
            requests: n(4)?,
            window_s: x(5)?,
            rps: x(6)?,
            p50_us: u32::try_from(n(7)?)?,
            p99_us: u32::try_from(n(8)?)?,
            non2xx: n(9)?,
            transport_errors: n(10)?,
            hwm_kib: n(11)?,
            offered: n(12)?,
            loadavg: x(13)?,
        })
    }
}

/// Median of a list (mean of the middle two for an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        f64::midpoint(v[m - 1], v[m])
    }
}

/// The medians of one (target, workload, connections) group.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Runs in the group.
    pub runs: usize,
    /// Median answers per second.
    pub rps: f64,
    /// Median of the runs' p50, ms.
    pub p50_ms: f64,
    /// Median of the runs' p99, ms.
    pub p99_ms: f64,
    /// Non-2xx answers over all runs.
    pub non2xx: u64,
    /// Transport errors over all runs.
    pub transport_errors: u64,
    /// Median of the runs' peak RSS, MiB (0 when unknown).
    pub hwm_mib: f64,
    /// Largest peak RSS of the runs, MiB.
    pub hwm_max_mib: f64,
    /// Median answered requests per run.
    pub requests: f64,
    /// Median MFA codes offered per run.
    pub offered: f64,
    /// Largest 1-minute load average seen at a run's start.
    pub loadavg_max: f64,
}

impl Summary {
    /// True when every request got a 2xx answer.
    pub fn clean(&self) -> bool {
        self.non2xx == 0 && self.transport_errors == 0
    }
}

type Key = (String, String, usize);

/// Groups run lines by (target, workload, connections) and takes medians.
pub fn summarise(lines: &[RunLine]) -> BTreeMap<Key, Summary> {
    let mut groups: BTreeMap<Key, Vec<&RunLine>> = BTreeMap::new();
    for l in lines {
        groups
            .entry((l.target.clone(), l.workload.clone(), l.conns))
            .or_default()
            .push(l);
    }
    groups
        .into_iter()
        .map(|(k, runs)| {
            let med = |f: &dyn Fn(&RunLine) -> f64| {
                median(&runs.iter().map(|r| f(r)).collect::<Vec<_>>())
            };
            let s = Summary {
                runs: runs.len(),
                rps: med(&|r| r.rps),
                p50_ms: med(&|r| f64::from(r.p50_us) / 1000.0),
                p99_ms: med(&|r| f64::from(r.p99_us) / 1000.0),
                non2xx: runs.iter().map(|r| r.non2xx).sum(),
                transport_errors: runs.iter().map(|r| r.transport_errors).sum(),
                hwm_mib: med(&|r| r.hwm_kib as f64 / 1024.0),
                hwm_max_mib: runs
                    .iter()
                    .map(|r| r.hwm_kib as f64 / 1024.0)
                    .fold(0.0, f64::max),
                requests: med(&|r| r.requests as f64),
                offered: med(&|r| r.offered as f64),
                loadavg_max: runs.iter().map(|r| r.loadavg).fold(0.0, f64::max),
            };
            (k, s)
        })
        .collect()
}

/// The suffix of a target's name in runs driven by wrk (`stsd@wrk`, `ceiling@wrk`; `bench/run.sh
/// --generator wrk|both`); names without it are runs of the in-repo generator.
pub const WRK_SUFFIX: &str = "@wrk";

/// The load generators, as (target name suffix, name shown in the report).
const GENERATORS: [(&str, &str); 2] = [("", "stsd-loadgen"), (WRK_SUFFIX, "wrk")];

/// The target name of nginx alone in front of the benchmark's static upstream (`bench/run.sh`).
pub const PROXY_ALONE: &str = "nginx";
/// The target name of nginx with `auth_request` to stsd in front of the same upstream.
pub const PROXY_WITH_STSD: &str = "nginx+stsd";

fn workload_label(key: &str) -> String {
    Workload::from_key(key).map_or_else(|| key.to_owned(), |w| w.label().to_owned())
}

fn rps_cell(s: &Summary) -> String {
    if s.clean() {
        format!("{:.0}", s.rps)
    } else {
        format!("~~{:.0}~~ (errors: not a throughput figure)", s.rps)
    }
}

fn ratio(a: Option<&Summary>, b: Option<&Summary>) -> (String, Option<f64>) {
    match (a, b) {
        (Some(a), Some(b)) if b.rps > 0.0 => {
            let r = a.rps / b.rps;
            let flag = if a.clean() && b.clean() {
                ""
            } else {
                " (errors)"
            };
            (format!("{r:.2}{flag}"), Some(r))
        }
        _ => ("–".to_owned(), None),
    }
}

/// The connection count at which the issue sets the ratio targets.
pub const TARGET_CONNS: usize = 64;

/// The median of `a`'s req/s over `b`'s, taken run by run: runs with the same number that both
/// targets have (`bench/run.sh` runs the targets in turns, so equal numbers saw the same machine state).
/// `None` when no run pairs up.
pub fn paired_ratio(
    lines: &[RunLine],
    a: &str,
    b: &str,
    workload: &str,
    conns: usize,
) -> Option<f64> {
    let group = |t: &str| -> Vec<&RunLine> {
        lines
            .iter()
            .filter(|l| l.target == t && l.workload == workload && l.conns == conns)
            .collect()
    };
    let (xs, ys) = (group(a), group(b));
    let ratios: Vec<f64> = xs
        .iter()
        .filter_map(|x| {
            ys.iter()
                .find(|y| y.run == x.run && y.rps > 0.0)
                .map(|y| x.rps / y.rps)
        })
        .collect();
    (!ratios.is_empty()).then(|| median(&ratios))
}

/// Extra facts shown in the report (`key\tvalue` lines of a meta file).
pub type Meta = Vec<(String, String)>;

/// Parses a meta file's text.
pub fn parse_meta(text: &str) -> Meta {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once('\t') {
            Some((k, v)) => (k.trim().to_owned(), v.trim().to_owned()),
            None => (l.trim().to_owned(), String::new()),
        })
        .collect()
}

fn meta_get<'a>(meta: &'a Meta, key: &str) -> Option<&'a str> {
    meta.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn yes_no(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

/// The markdown report.
pub fn markdown(title: &str, lines: &[RunLine], meta: &Meta) -> String {
    let sums = summarise(lines);
    let get = |t: &str, w: &str, c: usize| sums.get(&(t.to_owned(), w.to_owned(), c));
    let mut md = String::new();
    let _ = writeln!(md, "# {title}\n");
    for (k, v) in meta.iter().filter(|(k, _)| !k.starts_with("scale.")) {
        let _ = writeln!(md, "- {k}: {v}");
    }
    if !meta.is_empty() {
        md.push('\n');
    }

    // Per target.
    let _ = writeln!(
        md,
        "## Per target (medians of the runs; non-2xx and errors summed over the runs)\n"
    );
    let _ = writeln!(
        md,
        "| target | workload | conns | runs | req/s | p50 ms | p99 ms | non-2xx | transport errors | peak RSS MiB (median / max) | max load avg | notes |"
    );
    let _ = writeln!(
        md,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    let mut targets: Vec<String> = sums.keys().map(|k| k.0.clone()).collect();
    targets.dedup();
    let order = |t: &str| match t.strip_suffix(WRK_SUFFIX).unwrap_or(t) {
        "stsd" => 0,
        "moto" => 1,
        "ceiling" => 2,
        PROXY_ALONE => 3,
        PROXY_WITH_STSD => 4,
        _ => 5,
    };
    targets.sort_by_key(|t| (order(t), t.clone()));
    targets.dedup();
    let w_order = |w: &str| {
        Workload::ALL
            .iter()
            .position(|x| x.key() == w)
            .unwrap_or(Workload::ALL.len())
    };
    let mut rows: Vec<(&Key, &Summary)> = sums.iter().collect();
    rows.sort_by_key(|((t, w, c), _)| (order(t), t.clone(), w_order(w), w.clone(), *c));
    for t in &targets {
        for ((tt, w, c), s) in rows.iter().copied() {
            if tt != t {
                continue;
            }
            let note = if w == Workload::GstMfa.key() {
                format!(
                    "burst of the codes the devices allowed: median {:.0} offered, {:.0} answered per run",
                    s.offered, s.requests
                )
            } else {
                format!("median {:.0} answers per run", s.requests)
            };
            let _ = writeln!(
                md,
                "| {t} | {} | {c} | {} | {} | {:.3} | {:.3} | {} | {} | {:.1} / {:.1} | {:.2} | {note} |",
                workload_label(w),
                s.runs,
                rps_cell(s),
                s.p50_ms,
                s.p99_ms,
                s.non2xx,
                s.transport_errors,
                s.hwm_mib,
                s.hwm_max_mib,
                s.loadavg_max,
            );
        }
    }
    md.push('\n');

    // Ratios.
    let has = |t: &str| sums.keys().any(|k| k.0 == t);
    if GENERATORS
        .iter()
        .any(|(g, _)| has(&format!("stsd{g}")) && has(&format!("ceiling{g}")))
        || (has("stsd") && has("moto"))
    {
        let _ = writeln!(md, "## Ratios (median req/s)\n");
        let _ = writeln!(
            md,
            "Each generator's runs are paired with the same generator's runs of the other target (wrk drives stsd, the ceiling and nginx, not moto).\n"
        );
        let _ = writeln!(
            md,
            "| workload | conns | generator | stsd req/s | moto req/s | ceiling req/s | stsd/moto | stsd/ceiling | stsd/ceiling, run by run (median) |"
        );
        let _ = writeln!(md, "|---|---:|---|---:|---:|---:|---:|---:|---:|");
        for w in [
            Workload::Gst,
            Workload::GciSession,
            Workload::GciLongterm,
            Workload::AssumeRole,
            Workload::Authz,
            Workload::IamRead,
        ] {
            let mut conns: Vec<usize> = sums
                .keys()
                .filter(|k| {
                    k.1 == w.key() && k.0.strip_suffix(WRK_SUFFIX).unwrap_or(&k.0) == "stsd"
                })
                .map(|k| k.2)
                .collect();
            conns.sort_unstable();
            conns.dedup();
            for c in conns {
                for (g, gname) in GENERATORS {
                    let (st, mt, ct) = (
                        format!("stsd{g}"),
                        format!("moto{g}"),
                        format!("ceiling{g}"),
                    );
                    let (s, m, ce) = (
                        get(&st, w.key(), c),
                        get(&mt, w.key(), c),
                        get(&ct, w.key(), c),
                    );
                    if s.is_none() {
                        continue;
                    }
                    let cell = |x: Option<&Summary>| x.map_or_else(|| "–".to_owned(), rps_cell);
                    let paired = paired_ratio(lines, &st, &ct, w.key(), c)
                        .map_or_else(|| "–".to_owned(), |r| format!("{r:.2}"));
                    let _ = writeln!(
                        md,
                        "| {} | {c} | {gname} | {} | {} | {} | {} | {} | {paired} |",
                        w.label(),
                        cell(s),
                        cell(m),
                        cell(ce),
                        ratio(s, m).0,
                        ratio(s, ce).0
                    );
                }
            }
        }
        md.push('\n');
    }

    // End to end through a reverse proxy: the cost of the authorizer check as a user sees it.
    let proxy = |g: &str| (format!("{PROXY_ALONE}{g}"), format!("{PROXY_WITH_STSD}{g}"));
    if GENERATORS.iter().any(|(g, _)| {
        let (alone, with) = proxy(g);
        has(&alone) && has(&with)
    }) {
        let w = Workload::AuthzProxy.key();
        let _ = writeln!(
            md,
            "## Through nginx (signed GET of the same upstream; what the authorizer check costs)\n"
        );
        let _ = writeln!(
            md,
            "| conns | generator | nginx alone req/s | nginx + stsd req/s | with/without, medians | with/without, run by run (median) | p50 ms (alone / with) | p99 ms (alone / with) |"
        );
        let _ = writeln!(md, "|---:|---|---:|---:|---:|---:|---|---|");
        let mut conns: Vec<usize> = sums
            .keys()
            .filter(|k| k.1 == w && k.0.strip_suffix(WRK_SUFFIX).unwrap_or(&k.0) == PROXY_WITH_STSD)
            .map(|k| k.2)
            .collect();
        conns.sort_unstable();
        conns.dedup();
        for c in conns {
            for (g, gname) in GENERATORS {
                let (alone, with) = proxy(g);
                let (a, s) = (get(&alone, w, c), get(&with, w, c));
                if s.is_none() {
                    continue;
                }
                let cell = |x: Option<&Summary>| x.map_or_else(|| "–".to_owned(), rps_cell);
                let ms = |x: Option<&Summary>, f: fn(&Summary) -> f64| {
                    x.map_or_else(|| "–".to_owned(), |s| format!("{:.3}", f(s)))
                };
                let paired = paired_ratio(lines, &with, &alone, w, c)
                    .map_or_else(|| "–".to_owned(), |r| format!("{r:.2}"));
                let _ = writeln!(
                    md,
                    "| {c} | {gname} | {} | {} | {} | {paired} | {} / {} | {} / {} |",
                    cell(a),
                    cell(s),
                    ratio(s, a).0,
                    ms(a, |s| s.p50_ms),
                    ms(s, |s| s.p50_ms),
                    ms(a, |s| s.p99_ms),
                    ms(s, |s| s.p99_ms),
                );
            }
        }
        md.push('\n');
    }

    // Scale comparison.
    if has("stsd-scale") && has("stsd-base") {
        let _ = writeln!(md, "## Scale run\n");
        let users = meta_get(meta, "scale.users").unwrap_or("?");
        let _ = writeln!(
            md,
            "| workload | conns | empty store req/s | {users}-user store req/s | change | p99 ms (empty / {users}) | non-2xx (empty / {users}) |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
        let mut conns: Vec<usize> = sums
            .keys()
            .filter(|k| k.0 == "stsd-scale")
            .map(|k| k.2)
            .collect();
        conns.sort_unstable();
        for c in conns {
            let w = Workload::Gst.key();
            let (b, s) = (get("stsd-base", w, c), get("stsd-scale", w, c));
            let change = match (b, s) {
                (Some(b), Some(s)) if b.rps > 0.0 => {
                    format!("{:+.1} %", (s.rps / b.rps - 1.0) * 100.0)
                }
                _ => "–".to_owned(),
            };
            let cell = |x: Option<&Summary>| x.map_or_else(|| "–".to_owned(), rps_cell);
            let p99 = |x: Option<&Summary>| {
                x.map_or_else(|| "–".to_owned(), |s| format!("{:.3}", s.p99_ms))
            };
            let errs = |x: Option<&Summary>| {
                x.map_or_else(
                    || "–".to_owned(),
                    |s| (s.non2xx + s.transport_errors).to_string(),
                )
            };
            let _ = writeln!(
                md,
                "| {} | {c} | {} | {} | {change} | {} / {} | {} / {} |",
                workload_label(w),
                cell(b),
                cell(s),
                p99(b),
                p99(s),
                errs(b),
                errs(s)
            );
        }
        md.push('\n');
        for (k, v) in meta.iter().filter(|(k, _)| k.starts_with("scale.")) {
            let _ = writeln!(md, "- {}: {v}", k.trim_start_matches("scale."));
        }
        md.push('\n');
    }

    // Targets.
    let _ = writeln!(md, "## Targets (reported, not asserted)\n");
    if has("stsd") || has(&format!("stsd{WRK_SUFFIX}")) {
        let _ = writeln!(
            md,
            "Issue 20's targets: at {TARGET_CONNS} connections GetSessionToken and GetCallerIdentity (session) ≥ 0.8 × the ceiling's req/s with the in-repo generator and ≥ 0.7 × with wrk, p99 ≤ 1.3 × the ceiling's p99; at 1 connection every non-MFA workload's p50 ≤ 1.5 × the ceiling's; GetSessionToken with MFA at {TARGET_CONNS} connections ≥ 10,000 req/s with p99 ≤ 5 ms; IAM writes at {TARGET_CONNS} connections ≥ 3,000 operations/s; peak RSS ≤ 48 MiB everywhere. Earlier issues': the authorizer ≥ 0.6 × the ceiling, GetSessionToken ≥ 50 × moto. A cell without yes/no is shown for reference.\n"
        );
        let _ = writeln!(
            md,
            "| stsd workload | conns | req/s vs the ceiling | p50 vs the ceiling (1 conn: ≤ 1.5 ×) | p99 | rate | ≥ 50 × moto req/s | zero non-2xx | peak RSS ≤ 48 MiB |"
        );
        let _ = writeln!(md, "|---|---:|---|---|---|---|---|---|---|");
        let check = |ok: bool, value: String| format!("{} ({value})", yes_no(ok));
        let replayable = |w: &str| {
            Workload::from_key(w).is_some_and(|w| {
                w != Workload::GstMfa && !w.is_iam_write() && w != Workload::AuthzProxy
            })
        };
        for ((t, w, c), s) in rows.iter().copied() {
            let g = match t.strip_prefix("stsd") {
                Some("") => "",
                Some(WRK_SUFFIX) => WRK_SUFFIX,
                _ => continue,
            };
            let ceiling_name = format!("ceiling{g}");
            let ceiling = get(&ceiling_name, w, *c);
            let at_target_conns = *c == TARGET_CONNS;
            let hot = w == Workload::Gst.key() || w == Workload::GciSession.key();
            // Run by run when the runs pair up (they saw the same machine state), else the ratio of
            // the medians.
            let vs_ceiling = match (
                paired_ratio(lines, t, &ceiling_name, w, *c),
                ratio(Some(s), ceiling),
            ) {
                (Some(r), _) => Some((r, format!("{r:.2} ×, run by run"))),
                (None, (_, Some(r))) => Some((r, format!("{r:.2} ×"))),
                _ => None,
            };
            let want = if !at_target_conns {
                None
            } else if hot {
                Some(if g.is_empty() { 0.8 } else { 0.7 })
            } else if w == Workload::Authz.key() {
                Some(0.6)
            } else {
                None
            };
            let vs_ceiling = match (vs_ceiling, want) {
                (Some((r, text)), Some(want)) => check(r >= want && s.clean(), text),
                (Some((_, text)), None) => text,
                (None, _) => "–".to_owned(),
            };
            let p50 = match ceiling {
                Some(x) if x.p50_ms > 0.0 => {
                    let r = s.p50_ms / x.p50_ms;
                    let text = format!("{r:.2} ×: {:.3} vs {:.3} ms", s.p50_ms, x.p50_ms);
                    if *c == 1 && replayable(w) {
                        check(r <= 1.5, text)
                    } else {
                        text
                    }
                }
                _ => "–".to_owned(),
            };
            let p99 = match ceiling {
                Some(x) if at_target_conns && hot && x.p99_ms > 0.0 => {
                    let r = s.p99_ms / x.p99_ms;
                    check(
                        r <= 1.3,
                        format!(
                            "{r:.2} × the ceiling's: {:.3} vs {:.3} ms",
                            s.p99_ms, x.p99_ms
                        ),
                    )
                }
                Some(x) => format!("{:.3} ms; ceiling {:.3} ms", s.p99_ms, x.p99_ms),
                None if at_target_conns && w == Workload::GstMfa.key() => {
                    check(s.p99_ms <= 5.0, format!("{:.3} ms ≤ 5 ms", s.p99_ms))
                }
                None => format!("{:.3} ms", s.p99_ms),
            };
            let rate = if at_target_conns && w == Workload::GstMfa.key() {
                check(
                    s.rps >= 10_000.0 && s.clean(),
                    format!("{:.0} req/s ≥ 10,000", s.rps),
                )
            } else if at_target_conns && Workload::from_key(w).is_some_and(Workload::is_iam_write) {
                check(
                    s.rps >= 3_000.0 && s.clean(),
                    format!("{:.0} ops/s ≥ 3,000", s.rps),
                )
            } else {
                "–".to_owned()
            };
            let vs_moto = if at_target_conns && w == Workload::Gst.key() {
                match ratio(Some(s), get(&format!("moto{g}"), w, *c)) {
                    (_, Some(r)) => check(r >= 50.0 && s.clean(), format!("{r:.1} ×")),
                    _ => "–".to_owned(),
                }
            } else {
                "–".to_owned()
            };
            let _ = writeln!(
                md,
                "| {}{} | {c} | {vs_ceiling} | {p50} | {p99} | {rate} | {vs_moto} | {} | {} |",
                workload_label(w),
                if g.is_empty() { "" } else { ", wrk" },
                check(
                    s.clean(),
                    format!("{} non-2xx, {} errors", s.non2xx, s.transport_errors)
                ),
                check(s.hwm_max_mib <= 48.0, format!("{:.1} MiB", s.hwm_max_mib)),
            );
        }
        md.push('\n');
    }
    let mut scale_checks: Vec<(String, String, bool)> = Vec::new();
    let mut scale_conns: Vec<usize> = sums
        .keys()
        .filter(|k| k.0 == "stsd-scale")
        .map(|k| k.2)
        .collect();
    scale_conns.sort_unstable();
    for c in scale_conns {
        let w = Workload::Gst.key();
        if let (Some(b), Some(s)) = (get("stsd-base", w, c), get("stsd-scale", w, c))
            && b.rps > 0.0
        {
            let drop = (1.0 - s.rps / b.rps) * 100.0;
            scale_checks.push((
                format!("GST throughput with the loaded store ≤ 10 % lower ({c} conns)"),
                format!("{drop:.1} % lower"),
                drop <= 10.0 && s.clean() && b.clean(),
            ));
        }
        if let Some(s) = get("stsd-scale", w, c) {
            scale_checks.push((
                format!("peak RSS with the loaded store ≤ 48 MiB ({c} conns)"),
                format!("{:.1} MiB", s.hwm_max_mib),
                s.hwm_max_mib <= 48.0,
            ));
        }
    }
    if let Some(ms) = meta_get(meta, "scale.start-up with the loaded store (ms)")
        .and_then(|v| v.parse::<f64>().ok())
    {
        scale_checks.push((
            "start-up with the loaded store ≤ 50 ms".to_owned(),
            format!("{ms:.0} ms"),
            ms <= 50.0,
        ));
    }
    let number = |k: &str| meta_get(meta, k).and_then(|v| v.parse::<f64>().ok());
    if let (Some(users), Some(secs)) = (
        number("scale.bulk load: users stored"),
        number("scale.bulk load: load seconds"),
    ) && users >= 1_000_000.0
    {
        scale_checks.push((
            format!("bulk load of {users:.0} users and keys ≤ 60 s"),
            format!("{secs:.1} s"),
            secs <= 60.0,
        ));
    }
    if !scale_checks.is_empty() {
        let _ = writeln!(md, "| scale target | measured | met |");
        let _ = writeln!(md, "|---|---:|---|");
        for (name, value, ok) in scale_checks {
            let _ = writeln!(md, "| {name} | {value} | {} |", yes_no(ok));
        }
        md.push('\n');
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(target: &str, w: &str, conns: usize, run: usize, rps: f64, non2xx: u64) -> RunLine {
        RunLine {
            target: target.into(),
            workload: w.into(),
            conns,
            run,
            requests: 1000,
            window_s: 1.0,
            rps,
            p50_us: 100,
            p99_us: 900,
            non2xx,
            transport_errors: 0,
            hwm_kib: 20 * 1024,
            offered: 0,
            loadavg: 1.0,
        }
    }

    #[test]
    fn line_round_trip() {
        let l = line("stsd", "gst", 64, 2, 1234.5, 0);
        assert_eq!(RunLine::parse(&l.to_line()).expect("parses"), l);
        assert!(RunLine::parse("a\tb").is_err());
    }

    #[test]
    fn paired_ratio_pairs_runs_by_number() {
        let lines = vec![
            line("stsd", "gst", 64, 1, 100.0, 0),
            line("ceiling", "gst", 64, 1, 200.0, 0),
            line("stsd", "gst", 64, 2, 60.0, 0),
            line("ceiling", "gst", 64, 2, 100.0, 0),
            line("stsd", "gst", 64, 3, 90.0, 0),
            line("ceiling", "gst", 64, 3, 100.0, 0),
            // Unpaired and other groups are ignored.
            line("stsd", "gst", 64, 4, 1.0, 0),
            line("ceiling", "gst", 1, 1, 1.0, 0),
        ];
        let r = paired_ratio(&lines, "stsd", "ceiling", "gst", 64).expect("pairs");
        assert!((r - 0.6).abs() < 1e-9, "{r}");
        assert!(paired_ratio(&lines, "stsd", "ceiling", "gci-session", 64).is_none());
    }

    #[test]
    fn medians() {
        assert!((median(&[3.0, 1.0, 2.0]) - 2.0).abs() < 1e-9);
        assert!((median(&[4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < 1e-9);
        assert!(median(&[]).abs() < 1e-9);
    }

    #[test]
    fn report_has_ratios_and_flags_errors() {
        let lines = vec![
            line("stsd", "gst", 64, 1, 1000.0, 0),
            line("stsd", "gst", 64, 2, 3000.0, 0),
            line("stsd", "gst", 64, 3, 2000.0, 0),
            line("moto", "gst", 64, 1, 20.0, 0),
            line("ceiling", "gst", 64, 1, 4000.0, 0),
            line("ceiling", "gst", 64, 2, 4000.0, 0),
            line("ceiling", "gst", 64, 3, 4000.0, 0),
            line("stsd", "gci-session", 1, 1, 5000.0, 3),
            line("stsd", "gst", 1, 1, 10.0, 0),
            line("ceiling", "gst", 1, 1, 4000.0, 0),
        ];
        let md = markdown("t", &lines, &vec![("machine".into(), "x".into())]);
        assert!(
            md.contains(
                "| (a) GetSessionToken, IAM user, no MFA | 64 | stsd-loadgen | 2000 | 20 | 4000 | 100.00 | 0.50 | 0.50 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("~~5000~~ (errors: not a throughput figure)"),
            "{md}"
        );
        assert!(
            md.contains(
                "| (a) GetSessionToken, IAM user, no MFA | 64 | **no** (0.50 ×, run by run) | 1.00 ×: 0.100 vs 0.100 ms | yes (1.00 × the ceiling's: 0.900 vs 0.900 ms) | – | yes (100.0 ×) |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| (a) GetSessionToken, IAM user, no MFA | 1 | 0.00 ×, run by run | yes (1.00 ×: 0.100 vs 0.100 ms) | 0.900 ms; ceiling 0.900 ms | – | – |"
            ),
            "ratio targets are judged at 64 connections, p50 at 1: {md}"
        );
        assert!(md.contains("- machine: x"));
    }

    #[test]
    fn report_shows_wrk_ratios_next_to_the_in_repo_ones() {
        let lines = vec![
            line("stsd", "gst", 64, 1, 1000.0, 0),
            line("ceiling", "gst", 64, 1, 2000.0, 0),
            line("stsd@wrk", "gst", 64, 1, 900.0, 0),
            line("ceiling@wrk", "gst", 64, 1, 1000.0, 0),
            line("stsd@wrk", "gst", 64, 2, 800.0, 0),
            line("ceiling@wrk", "gst", 64, 2, 1000.0, 0),
            line("stsd@wrk", "gci-session", 1, 1, 500.0, 2),
            line("ceiling@wrk", "gci-session", 1, 1, 1000.0, 0),
            line("nginx+stsd@wrk", "authz-proxy", 64, 1, 700.0, 0),
            line("nginx@wrk", "authz-proxy", 64, 1, 1000.0, 0),
        ];
        let md = markdown("t", &lines, &Vec::new());
        let gst = "| (a) GetSessionToken, IAM user, no MFA | 64 |";
        assert!(
            md.contains(&format!(
                "{gst} stsd-loadgen | 1000 | – | 2000 | – | 0.50 | 0.50 |\n{gst} wrk | 850 | – | 1000 | – | 0.85 | 0.85 |"
            )),
            "{md}"
        );
        assert!(
            md.contains(
                "| wrk | ~~500~~ (errors: not a throughput figure) | – | 1000 | – | 0.50 (errors) |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| 64 | wrk | 1000 | 700 | 0.70 | 0.70 |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| (a) GetSessionToken, IAM user, no MFA, wrk | 64 | yes (0.85 ×, run by run) |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| (a) GetSessionToken, IAM user, no MFA | 64 | **no** (0.50 ×, run by run) |"
            ),
            "{md}"
        );
        // Only wrk runs: the tables are still there.
        let only: Vec<RunLine> = lines
            .into_iter()
            .filter(|l| l.target.ends_with(WRK_SUFFIX))
            .collect();
        assert!(markdown("t", &only, &Vec::new()).contains("## Ratios"));
    }
}
