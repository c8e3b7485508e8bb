//! stsd's load benchmark tools (see `bench/README.md`).
//!
//! - [`request`]: requests signed the way boto3 signs awsQuery calls (POST form body, signed headers
//!   `content-type;host;x-amz-date[;x-amz-security-token]`), with [`stsd_sigv4::sign_headers`];
//! - [`client`]: one HTTP/1 keep-alive connection (hyper);
//! - [`creds`]: the credentials file written by `stsd-loadgen setup` and read by `stsd-loadgen run`;
//! - [`setup`]: IAM calls signed as the root (users, access keys, virtual MFA devices);
//! - [`load`]: the workloads and the timed, bounded request loops;
//! - [`report`]: medians over runs and the markdown tables;
//! - [`procfs`]: a server's peak RSS (`VmHWM`) and its reset.

#![warn(missing_docs)]

pub mod client;
pub mod creds;
pub mod load;
pub mod procfs;
pub mod report;
pub mod request;
pub mod setup;
pub mod wrk;

/// Signing region of every benchmark request (any region is accepted by a default stsd).
pub const REGION: &str = "us-east-1";
/// STS API version.
pub const STS_VERSION: &str = "2011-06-15";
/// IAM API version.
pub const IAM_VERSION: &str = "2010-05-08";

/// The tokio `event_interval` of `stsd serve` (`stsd::http::EVENT_INTERVAL`), used by these tools too so
/// that the HTTP ceiling's runtime is set up exactly like stsd's.
pub const EVENT_INTERVAL: u32 = 200;

/// Runs a tool's async entry point on a multi-threaded runtime and turns its outcome into an exit
/// status, reporting failures as `NAME: error: ...`.
pub fn run_main<F>(name: &str, fut: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(EVENT_INTERVAL)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The current unix time in seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The text of the first `<name>…</name>` element in `xml`, with the five XML entities decoded.
pub fn xml_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_finds_and_unescapes() {
        let x = "<a><AccessKeyId>AKIA1</AccessKeyId><M>x &amp; &lt;y&gt;</M></a>";
        assert_eq!(xml_text(x, "AccessKeyId").as_deref(), Some("AKIA1"));
        assert_eq!(xml_text(x, "M").as_deref(), Some("x & <y>"));
        assert_eq!(xml_text(x, "Nope"), None);
    }

    #[test]
    fn the_ceiling_runs_on_the_same_scheduler_setting_as_stsd() {
        assert_eq!(EVENT_INTERVAL, stsd::http::EVENT_INTERVAL);
    }
}
