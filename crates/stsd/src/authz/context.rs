//! The request context of policy evaluation: AWS's global condition keys with their presence rules
//! (policy reference §5.1).

use crate::auth::Caller;
use std::net::IpAddr;
use std::sync::Arc;
use stsd_core::token::{Principal, SessionExt};
use stsd_policy::{Context, Value};
use stsd_store::Owner;

/// A network in CIDR notation (`10.0.0.0/8`, `::1/128`; a bare address is a single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR[/PREFIX]`.
    ///
    /// # Errors
    /// A message naming the bad value.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("{s:?} has a bad prefix length"))?,
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) if self.addr.is_ipv4() => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            other => other,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// What the transport says about a request.
#[derive(Debug, Clone, Copy)]
pub struct Transport<'a> {
    /// The TCP peer.
    pub peer: IpAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The request headers.
    pub headers: &'a http::HeaderMap,
}

/// The client's address and whether it used TLS: the TCP peer's, unless the peer is a trusted proxy,
/// in which case `X-Forwarded-For` (the right-most address that is not itself a trusted proxy) and
/// `X-Forwarded-Proto` are believed.
pub fn client(t: &Transport<'_>, trusted: &[Cidr]) -> (IpAddr, bool) {
    if !trusted.iter().any(|c| c.contains(t.peer)) {
        return (t.peer, t.tls);
    }
    let mut ip = t.peer;
    let forwarded: Vec<IpAddr> = t
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    for a in forwarded.iter().rev() {
        ip = *a;
        if !trusted.iter().any(|c| c.contains(*a)) {
            break;
        }
    }
    let tls = match t
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some(p) => p.trim().eq_ignore_ascii_case("https"),
        None => t.tls,
    };
    (ip, tls)
}

/// The identity facts of a caller used in policies.
#[derive(Debug, Clone)]
pub struct Who {
    /// `arn:aws:iam::ACCT:root`, the user's ARN, or the role session's `assumed-role` ARN (as
    /// AccessDenied messages name the caller).
    pub arn: String,
    /// For users: `(user id, name, path)`.
    pub user: Option<(String, String, String)>,
    /// For role sessions.
    pub role: Option<RoleWho>,
    /// Session policies and scope-down layers the caller's permissions are intersected with.
    pub session: Option<Arc<SessionExt>>,
}

/// A role session's identity facts.
#[derive(Debug, Clone)]
pub struct RoleWho {
    /// `AROA...`
    pub role_id: String,
    /// The role's ARN (with its path): `aws:PrincipalArn`.
    pub role_arn: String,
    /// Role name.
    pub name: String,
    /// `RoleSessionName`.
    pub session_name: String,
}

impl Who {
    /// The caller's identity.
    pub fn of(caller: &Caller, account: &str) -> Who {
        let session = caller
            .claims()
            .filter(|c| c.ext != SessionExt::default())
            .map(|c| Arc::new(c.ext.clone()));
        let root = || Who {
            arn: crate::auth::root_arn(account),
            user: None,
            role: None,
            session: session.clone(),
        };
        let user = |id: &str, name: &str, path: &str| Who {
            arn: crate::auth::user_arn(account, path, name),
            user: Some((id.to_owned(), name.to_owned(), path.to_owned())),
            role: None,
            session: session.clone(),
        };
        match caller {
            Caller::LongTerm(k) => match &k.owner {
                Owner::Root => root(),
                Owner::User(u) => user(&u.user_id, &u.name, &u.path),
            },
            Caller::Session(c) => match &c.principal {
                Principal::Root => root(),
                Principal::User {
                    user_id,
                    name,
                    path,
                } => user(user_id, name, path),
                Principal::Role {
                    role_id,
                    name,
                    path,
                    session_name,
                } => Who {
                    arn: crate::auth::assumed_role_arn(account, name, session_name),
                    user: None,
                    role: Some(RoleWho {
                        role_id: role_id.clone(),
                        role_arn: crate::iam::roles::role_arn(account, path, name),
                        name: name.clone(),
                        session_name: session_name.clone(),
                    }),
                    session: session.clone(),
                },
            },
        }
    }

    /// The account root (no session layers).
    pub fn root(account: &str) -> Who {
        Who {
            arn: crate::auth::root_arn(account),
            user: None,
            role: None,
            session: None,
        }
    }
}

/// Builds the request context for a caller.
pub fn build(
    caller: Option<&Caller>,
    who: &Who,
    account: &str,
    now: i64,
    client: Option<(IpAddr, bool)>,
    user_agent: Option<&str>,
    region: &str,
) -> Context {
    let mut ctx = Context::new();
    ctx.set_static("aws:CurrentTime", Value::Date(now));
    #[allow(clippy::cast_precision_loss)]
    ctx.set_static("aws:EpochTime", Value::Num(now as f64));
    ctx.set_static("aws:RequestedRegion", Value::Str(region.to_owned()));
    if let Some((ip, tls)) = client {
        ctx.set_static("aws:SourceIp", Value::Ip(ip));
        ctx.set_static("aws:SecureTransport", Value::Bool(tls));
    } else {
        ctx.set_static("aws:SecureTransport", Value::Bool(false));
    }
    if let Some(ua) = user_agent {
        ctx.set_static("aws:UserAgent", Value::Str(ua.to_owned()));
    }
    ctx.set_static(
        "aws:PrincipalArn",
        Value::Str(
            who.role
                .as_ref()
                .map_or_else(|| who.arn.clone(), |r| r.role_arn.clone()),
        ),
    );
    ctx.set_static("aws:PrincipalAccount", Value::Str(account.to_owned()));
    if let Some(s) = &who.session {
        if let Some(si) = &s.source_identity {
            ctx.set_static("aws:SourceIdentity", Value::Str(si.clone()));
        }
        for (k, v) in &s.tags {
            ctx.set(&format!("aws:PrincipalTag/{k}"), Value::Str(v.clone()));
        }
    }
    match &who.user {
        None if who.role.is_some() => {
            let r = who.role.as_ref().map(|r| (&r.role_id, &r.session_name));
            ctx.set_static("aws:PrincipalType", Value::Str("AssumedRole".into()));
            if let Some((id, session)) = r {
                ctx.set_static(
                    "aws:userid",
                    Value::Str(crate::auth::role_session_user_id(id, session)),
                );
            }
        }
        None => {
            ctx.set_static("aws:PrincipalType", Value::Str("Account".into()));
            ctx.set_static("aws:userid", Value::Str(account.to_owned()));
        }
        Some((id, name, _)) => {
            ctx.set_static("aws:PrincipalType", Value::Str("User".into()));
            ctx.set_static("aws:userid", Value::Str(id.clone()));
            ctx.set_static("aws:username", Value::Str(name.clone()));
        }
    }
    if let Some(Caller::Session(c)) = caller {
        ctx.set_static("aws:TokenIssueTime", Value::Date(c.issued_at));
        ctx.set_static("aws:MultiFactorAuthPresent", Value::Bool(c.mfa.is_some()));
        if let Some(m) = &c.mfa {
            #[allow(clippy::cast_precision_loss)]
            ctx.set_static(
                "aws:MultiFactorAuthAge",
                Value::Num((now - m.authenticated_at).max(0) as f64),
            );
        }
    }
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        let h = Cidr::parse("::1").unwrap();
        assert!(h.contains("::1".parse().unwrap()));
        assert!(!h.contains("::2".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("1.2.3.4/33").is_err());
        assert!(Cidr::parse("nope").is_err());
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let mut h = http::HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.7, 10.0.0.2".parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        let trusted = [
            Cidr::parse("127.0.0.1/32").unwrap(),
            Cidr::parse("10.0.0.0/8").unwrap(),
        ];
        let t = Transport {
            peer: "127.0.0.1".parse().unwrap(),
            tls: false,
            headers: &h,
        };
        assert_eq!(client(&t, &trusted), ("203.0.113.7".parse().unwrap(), true));
        let untrusted = Transport {
            peer: "192.0.2.1".parse().unwrap(),
            ..t
        };
        assert_eq!(
            client(&untrusted, &trusted),
            ("192.0.2.1".parse().unwrap(), false)
        );
        assert_eq!(client(&t, &[]), ("127.0.0.1".parse().unwrap(), false));
    }
}
