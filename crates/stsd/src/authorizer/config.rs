//! `[[authz.api]]`: the HTTP APIs the authorizer protects, and how an original request maps to one of
//! them, its action and its resource ARN.

use serde::Deserialize;

/// The default SigV4 service name (API Gateway's).
pub const DEFAULT_SERVICE: &str = "execute-api";
/// The default action.
pub const DEFAULT_ACTION: &str = "execute-api:Invoke";

/// One `[[authz.api]]` table as written in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTable {
    id: Option<String>,
    stage: Option<String>,
    hosts: Option<Vec<String>>,
    path_prefix: Option<String>,
    service: Option<String>,
    region: Option<String>,
    unsigned_payload: Option<bool>,
    action_prefix: Option<String>,
    #[serde(default)]
    actions: Vec<ActionTable>,
}

/// One `[[authz.api.actions]]` row: a method and path pattern → an action name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionTable {
    method: Option<String>,
    path: Option<String>,
    action: Option<String>,
}

/// A validated API.
#[derive(Debug, Clone)]
pub struct Api {
    /// `{api-id}` of the resource ARN.
    pub id: String,
    /// `{stage}`.
    pub stage: String,
    /// Lowercase host names (no port); `*` matches any host.
    pub hosts: Vec<String>,
    /// Original paths under this prefix belong to the API.
    pub path_prefix: String,
    /// SigV4 service name of the credential scope.
    pub service: String,
    /// The only credential-scope region accepted (`None`: any region stsd accepts).
    pub region: Option<Vec<String>>,
    /// Whether `x-amz-content-sha256: UNSIGNED-PAYLOAD` is accepted.
    pub unsigned_payload: bool,
    /// A method/path → action table (`None`: every request is `execute-api:Invoke`).
    pub actions: Option<Actions>,
}

/// A service's own actions.
#[derive(Debug, Clone)]
pub struct Actions {
    /// The routes, first match wins; an unmatched request is an unknown route.
    pub routes: Vec<Route>,
}

/// One route of [`Actions`].
#[derive(Debug, Clone)]
pub struct Route {
    /// Uppercase method, or `*`.
    pub method: String,
    /// Path pattern relative to the prefix, without the leading `/`; `*` matches any run of characters.
    pub path: String,
    /// `prefix:Action`.
    pub action: String,
}

fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl ApiTable {
    /// Checks one table (`n` is its position, for messages).
    ///
    /// # Errors
    /// A message naming the key.
    pub fn validate(self, n: usize) -> Result<Api, String> {
        let at = |key: &str| format!("authz.api[{n}].{key}");
        let id = self.id.ok_or_else(|| format!("{} is required", at("id")))?;
        if !valid_token(&id) {
            return Err(format!(
                "{} must be 1-128 letters, digits, '-', '_' or '.', not {id:?}",
                at("id")
            ));
        }
        let stage = self
            .stage
            .ok_or_else(|| format!("{} is required", at("stage")))?;
        if !valid_token(&stage) {
            return Err(format!(
                "{} must be 1-128 letters, digits, '-', '_' or '.', not {stage:?}",
                at("stage")
            ));
        }
        let hosts = self
            .hosts
            .ok_or_else(|| format!("{} is required (e.g. [\"api.internal\"])", at("hosts")))?;
        if hosts.is_empty() {
            return Err(format!("{} must name at least one host", at("hosts")));
        }
        let mut lower = Vec::with_capacity(hosts.len());
        for h in hosts {
            let h = h.trim().to_ascii_lowercase();
            if h.is_empty() || h.contains(['/', ' ', '?', '#']) {
                return Err(format!("{} has a bad host name {h:?}", at("hosts")));
            }
            lower.push(strip_port(&h).to_owned());
        }
        let path_prefix = self.path_prefix.unwrap_or_else(|| "/".to_owned());
        if !path_prefix.starts_with('/') || path_prefix.contains(['?', '#']) {
            return Err(format!(
                "{} must start with '/' and hold no query, not {path_prefix:?}",
                at("path_prefix")
            ));
        }
        let service = self.service.unwrap_or_else(|| DEFAULT_SERVICE.to_owned());
        if !valid_token(&service) {
            return Err(format!(
                "{} is not a service name: {service:?}",
                at("service")
            ));
        }
        if let Some(r) = &self.region
            && !valid_token(r)
        {
            return Err(format!("{} is not a region name: {r:?}", at("region")));
        }
        let actions = match (self.action_prefix, self.actions.is_empty()) {
            (None, true) => None,
            (None, false) => {
                return Err(format!(
                    "{} is required with {}",
                    at("action_prefix"),
                    at("actions")
                ));
            }
            (Some(_), true) => {
                return Err(format!(
                    "{} needs at least one [[authz.api.actions]] table",
                    at("action_prefix")
                ));
            }
            (Some(prefix), false) => {
                if !valid_token(&prefix) || prefix.contains('.') {
                    return Err(format!(
                        "{} must be letters, digits, '-' or '_', not {prefix:?}",
                        at("action_prefix")
                    ));
                }
                let mut routes = Vec::with_capacity(self.actions.len());
                for (i, a) in self.actions.into_iter().enumerate() {
                    let key = |k: &str| at(&format!("actions[{i}].{k}"));
                    let method = a
                        .method
                        .unwrap_or_else(|| "*".to_owned())
                        .to_ascii_uppercase();
                    if method != "*" && !method.bytes().all(|b| b.is_ascii_uppercase()) {
                        return Err(format!(
                            "{} is not an HTTP method: {method:?}",
                            key("method")
                        ));
                    }
                    let path = a
                        .path
                        .ok_or_else(|| format!("{} is required", key("path")))?;
                    let path = path.trim_start_matches('/').to_owned();
                    let action = a
                        .action
                        .ok_or_else(|| format!("{} is required", key("action")))?;
                    if action.is_empty() || !action.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        return Err(format!(
                            "{} must be letters and digits (e.g. GetOrder), not {action:?}",
                            key("action")
                        ));
                    }
                    routes.push(Route {
                        method,
                        path,
                        action: format!("{prefix}:{action}"),
                    });
                }
                Some(Actions { routes })
            }
        };
        Ok(Api {
            id,
            stage,
            hosts: lower,
            path_prefix,
            service,
            region: self.region.map(|r| vec![r]),
            unsigned_payload: self.unsigned_payload.unwrap_or(false),
            actions,
        })
    }
}

/// Validates every table; two APIs may not claim the same host and prefix.
///
/// # Errors
/// A message naming the key.
pub fn validate(tables: Vec<ApiTable>) -> Result<Vec<Api>, String> {
    let mut apis: Vec<Api> = Vec::with_capacity(tables.len());
    for (n, t) in tables.into_iter().enumerate() {
        let api = t.validate(n)?;
        for other in &apis {
            if other.path_prefix == api.path_prefix
                && api.hosts.iter().any(|h| other.hosts.contains(h))
            {
                return Err(format!(
                    "authz.api[{n}]: hosts and path_prefix {:?} are already served by API {:?}",
                    api.path_prefix, other.id
                ));
            }
        }
        apis.push(api);
    }
    Ok(apis)
}

/// `host[:port]` → `host` (IPv6 literals keep their brackets).
pub fn strip_port(h: &str) -> &str {
    if h.starts_with('[') {
        return match h.find(']') {
            Some(i) => &h[..=i],
            None => h,
        };
    }
    match h.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => h,
    }
}

/// The API serving `host` (any case, port ignored) and `path`: the longest matching prefix wins.
pub fn find<'a>(apis: &'a [Api], host: &str, path: &str) -> Option<&'a Api> {
    let host = strip_port(host.trim());
    apis.iter()
        .filter(|a| {
            a.hosts
                .iter()
                .any(|h| h == "*" || h.eq_ignore_ascii_case(host))
                && under_prefix(path, &a.path_prefix)
        })
        .max_by_key(|a| a.path_prefix.len())
}

fn under_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return path.starts_with('/');
    }
    // `/orders` and `/orders/` both serve `/orders` and `/orders/...`, never `/ordersx`.
    let p = prefix.trim_end_matches('/');
    path == p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
}

/// The ARN's resource path for `path` under `api`'s prefix: no leading `/`.
pub fn resource_path<'a>(api: &Api, path: &'a str) -> &'a str {
    let p = api.path_prefix.trim_end_matches('/');
    path.strip_prefix(p).unwrap_or(path).trim_start_matches('/')
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (none included).
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

impl Api {
    /// The action for `method` and `rest` (the resource path): `None` for a route the table lacks.
    pub fn action(&self, method: &str, rest: &str) -> Option<&str> {
        match &self.actions {
            None => Some(DEFAULT_ACTION),
            Some(a) => a
                .routes
                .iter()
                .find(|r| (r.method == "*" || r.method == method) && glob(&r.path, rest))
                .map(|r| r.action.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(s: &str) -> Result<Vec<Api>, String> {
        #[derive(Deserialize)]
        struct F {
            api: Vec<ApiTable>,
        }
        let f: F = toml::from_str(s).map_err(|e| e.to_string())?;
        validate(f.api)
    }

    #[test]
    fn tables_validate_with_messages_naming_the_key() {
        let apis = table(
            "[[api]]\nid = \"orders\"\nstage = \"prod\"\nhosts = [\"Orders.internal:8080\", \"127.0.0.1\"]\n",
        )
        .unwrap();
        assert_eq!(apis[0].hosts, ["orders.internal", "127.0.0.1"]);
        assert_eq!(apis[0].service, "execute-api");
        assert!(!apis[0].unsigned_payload);
        let e = table("[[api]]\nstage = \"p\"\nhosts = [\"h\"]\n").unwrap_err();
        assert!(e.contains("authz.api[0].id"), "{e}");
        let e = table("[[api]]\nid = \"a\"\nstage = \"p\"\nhosts = []\n").unwrap_err();
        assert!(e.contains("authz.api[0].hosts"), "{e}");
        let e = table("[[api]]\nid = \"a\"\nstage = \"p\"\nhosts = [\"h\"]\npath_prefix = \"x\"\n")
            .unwrap_err();
        assert!(e.contains("path_prefix"), "{e}");
        let e =
            table("[[api]]\nid = \"a\"\nstage = \"p\"\nhosts = [\"h\"]\nbogus = 1\n").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        let e = table(
            "[[api]]\nid = \"a\"\nstage = \"p\"\nhosts = [\"h\"]\n[[api]]\nid = \"b\"\nstage = \"p\"\nhosts = [\"H\"]\n",
        )
        .unwrap_err();
        assert!(e.contains("authz.api[1]"), "{e}");
        let e = table(
            "[[api]]\nid = \"a\"\nstage = \"p\"\nhosts = [\"h\"]\n[[api.actions]]\npath = \"x\"\naction = \"Get\"\n",
        )
        .unwrap_err();
        assert!(e.contains("authz.api[0].action_prefix"), "{e}");
    }

    #[test]
    fn requests_map_to_apis_actions_and_paths() {
        let apis = table(
            "[[api]]\nid = \"all\"\nstage = \"s\"\nhosts = [\"h\"]\n\
             [[api]]\nid = \"orders\"\nstage = \"prod\"\nhosts = [\"h\"]\npath_prefix = \"/orders\"\naction_prefix = \"orders\"\n\
             [[api.actions]]\nmethod = \"get\"\npath = \"orders/*\"\naction = \"GetOrder\"\n\
             [[api.actions]]\npath = \"*\"\naction = \"Other\"\n",
        )
        .unwrap();
        assert_eq!(find(&apis, "h:80", "/x").unwrap().id, "all");
        assert_eq!(find(&apis, "H", "/orders/orders/1").unwrap().id, "orders");
        assert_eq!(find(&apis, "h", "/ordersx").unwrap().id, "all");
        assert!(find(&apis, "other", "/").is_none());
        let o = find(&apis, "h", "/orders/orders/1").unwrap();
        assert_eq!(resource_path(o, "/orders/orders/1"), "orders/1");
        assert_eq!(o.action("GET", "orders/1"), Some("orders:GetOrder"));
        assert_eq!(o.action("POST", "orders/1"), Some("orders:Other"));
        let all = find(&apis, "h", "/").unwrap();
        assert_eq!(resource_path(all, "/pets/dog"), "pets/dog");
        assert_eq!(all.action("DELETE", "x"), Some("execute-api:Invoke"));
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert!(glob("a*c", "abbc") && !glob("a*c", "abd") && glob("*", ""));
    }
}
