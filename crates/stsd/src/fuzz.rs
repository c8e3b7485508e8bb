//! The harness of the cargo-fuzz target `http` (`fuzz/fuzz_targets/http.rs`): arbitrary bytes as what a
//! client sends on one connection, served in-process (no sockets: an in-memory duplex stream) by the
//! server's own HTTP settings and request handling ([`crate::http::serve_stream`]) against a real store in
//! a temporary directory, with the web console on (as `stsd serve` runs it). Replayed on stable by this
//! module's test over `fuzz/corpus/http/`.
//!
//! Invariants: no panic; the connection ends within a bound once the client has sent everything and
//! closed its side (no request can hold a connection open after EOF); whatever the server writes is a
//! sequence of HTTP responses.
//!
//! The store holds the account's root key `AKIAFUZZROOTKEY00001` with the secret [`ROOT_SECRET`], and the
//! clock is set to [`FUZZ_EPOCH`] when the harness starts, so seeds signed for that time pass the SigV4
//! check (for the first 15 minutes of a campaign; later they exercise the refusal paths).

use crate::console::session::{DEFAULT_ABSOLUTE_SECS, DEFAULT_IDLE_SECS, Sessions};
use crate::setup::{self, RootFromEnv, StoreConfig};
use crate::state::{AppState, Clock};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The root key id in the harness's store.
pub const ROOT_KEY_ID: &str = "AKIAFUZZROOTKEY00001";
/// Its secret (a test value).
pub const ROOT_SECRET: &str = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz";
/// The harness's clock at start: 2026-12-03T00:00:00Z.
pub const FUZZ_EPOCH: i64 = 1_796_256_000;
/// How long one input may keep its connection after the client's EOF.
const BOUND: Duration = Duration::from_secs(5);

struct Harness {
    rt: tokio::runtime::Runtime,
    state: Arc<AppState>,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        // The harness's own set-up: failures here are not findings, so they panic with the reason.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("fuzz harness runtime: {e}"));
        let dir = std::env::temp_dir().join(format!("stsd-fuzz-http-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = rt
            .block_on(async {
                let store = setup::open_store(&StoreConfig {
                    data_dir: dir.clone(),
                    master_key_file: None,
                    database_url: None,
                })
                .await?;
                let account = store.init_account(Some(123_456_789_012)).await?;
                let clock = Clock {
                    offset: FUZZ_EPOCH - stsd_core::timefmt::now_unix(),
                };
                let now = clock.now();
                setup::ensure_root_key(
                    &store,
                    &dir,
                    account,
                    Some(RootFromEnv {
                        access_key_id: ROOT_KEY_ID.to_owned(),
                        secret_access_key: stsd_core::secret::Secret::new(ROOT_SECRET),
                    }),
                    now,
                )
                .await?;
                let ring = store.load_key_ring(now).await?;
                let mut state = AppState::new(store, ring, account, None, clock);
                // The console, as `stsd serve` runs it: its anonymous surface (sign-in form, cookies,
                // CSRF checks, routing) is what an attacker reaches.
                state.console = Some(Sessions::new(DEFAULT_IDLE_SECS, DEFAULT_ABSOLUTE_SECS));
                anyhow::Ok(state)
            })
            .unwrap_or_else(|e| panic!("fuzz harness store in {}: {e:#}", dir.display()));
        Harness {
            rt,
            state: Arc::new(state),
        }
    })
}

/// One input: `data` is everything the client sends before closing its side of the connection.
pub fn fuzz_one(data: &[u8]) {
    let h = harness();
    let state = Arc::clone(&h.state);
    let out = h.rt.block_on(async move {
        let (mut client, server) = tokio::io::duplex(256 * 1024);
        let peer = SocketAddr::from(([192, 0, 2, 1], 40_000));
        let conn = tokio::spawn(crate::http::serve_stream(server, state, peer));
        let talk = async {
            // The server may answer (and close) before it has read everything: a failed write is fine.
            let _ = client.write_all(data).await;
            let _ = client.shutdown().await;
            let mut out = Vec::new();
            let _ = client.read_to_end(&mut out).await;
            out
        };
        let out = tokio::time::timeout(BOUND, talk).await;
        conn.abort();
        out
    });
    let Ok(out) = out else {
        panic!(
            "the connection was still open {BOUND:?} after the client's EOF (input {} bytes)",
            data.len()
        );
    };
    check_responses(&out);
}

/// Whatever the server wrote must be HTTP responses (1.1, or 1.0 to an HTTP/1.0 request), one after another,
/// each with its length.
fn check_responses(mut out: &[u8]) {
    while !out.is_empty() {
        assert!(
            out.starts_with(b"HTTP/1.1 ") || out.starts_with(b"HTTP/1.0 "),
            "not an HTTP response: {:?}",
            String::from_utf8_lossy(&out[..out.len().min(80)])
        );
        let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") else {
            panic!("a response head without its end");
        };
        let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let next = end + 4 + len;
        assert!(next <= out.len(), "a response body shorter than its length");
        out = &out[next..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_healthz_request_is_answered() {
        let h = harness();
        let state = Arc::clone(&h.state);
        let out = h.rt.block_on(async move {
            let (mut client, server) = tokio::io::duplex(64 * 1024);
            let peer = SocketAddr::from(([192, 0, 2, 1], 40_000));
            tokio::spawn(crate::http::serve_stream(server, state, peer));
            client
                .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .expect("write");
            client.shutdown().await.expect("shutdown");
            let mut out = Vec::new();
            client.read_to_end(&mut out).await.expect("read");
            out
        });
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(text.ends_with("ok\n"), "{text}");
    }

    #[test]
    fn a_signed_seed_passes_the_signature_check() {
        // The `sts-gci-signed` seed is a GetCallerIdentity signed by the harness's root key at FUZZ_EPOCH.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/http");
        let seed = std::fs::read(dir.join("sts-gci-signed")).expect("seed");
        let h = harness();
        let state = Arc::clone(&h.state);
        let out = h.rt.block_on(async move {
            let (mut client, server) = tokio::io::duplex(64 * 1024);
            let peer = SocketAddr::from(([192, 0, 2, 1], 40_000));
            tokio::spawn(crate::http::serve_stream(server, state, peer));
            client.write_all(&seed).await.expect("write");
            client.shutdown().await.expect("shutdown");
            let mut out = Vec::new();
            client.read_to_end(&mut out).await.expect("read");
            out
        });
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(
            text.contains("<Arn>arn:aws:iam::123456789012:root</Arn>"),
            "{text}"
        );
    }

    #[test]
    fn fuzz_corpus_replays_without_panic() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/http");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus dir") {
            let data = std::fs::read(entry.expect("entry").path()).expect("seed");
            fuzz_one(&data);
            // Every cut of the seed at a line end, and a few bytes flipped.
            for (i, _) in data.iter().enumerate().filter(|(_, b)| **b == b'\n') {
                fuzz_one(&data[..i]);
            }
            for i in (0..data.len()).step_by(7) {
                for b in [b' ', b':', b'\n', 0u8, 0xff] {
                    let mut m = data.clone();
                    m[i] = b;
                    fuzz_one(&m);
                }
            }
            n += 1;
        }
        assert!(n >= 5, "expected the seed corpus in {}", dir.display());
    }
}
