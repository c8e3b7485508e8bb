//! "My security credentials" (`/console/`) and its forms: MFA devices (`/console/mfa/*`) and access
//! keys (`/console/keys`), each through the API's IAM executor as the signed-in principal.

use super::session::{NEW_KEY_DOWNLOAD_SECS, SessionInfo, Stage};
use super::view::{HomePage, KeyCreatedPage, KeyRow, Layout, MfaAssignPage, MfaRow};
use super::{Reply, redirect, render, run_action, run_validated};
use crate::auth::user_arn;
use crate::handler::Incoming;
use crate::state::AppState;
use stsd_core::secret::Secret;
use stsd_proto::Params;
use stsd_proto::iam::{IamAction, IamOutput, Page};

/// The page a session sees at `/console/`: the sign-in step it has reached, or "My security
/// credentials" with an optional `role="alert"` message.
pub(super) async fn home(
    state: &AppState,
    req: &Incoming<'_>,
    info: &SessionInfo,
    csrf: &Secret,
    message: Option<&str>,
) -> Reply {
    match info.stage {
        Stage::NeedsMfa => super::signin::mfa_page(state, info, csrf, message).await,
        Stage::NeedsPasswordChange => {
            super::signin::password_change_page(state, info, csrf, message)
        }
        Stage::Ready => credentials_page(state, req, info, csrf, message, None).await,
    }
}

async fn credentials_page(
    state: &AppState,
    req: &Incoming<'_>,
    info: &SessionInfo,
    csrf: &Secret,
    message: Option<&str>,
    status: Option<&str>,
) -> Reply {
    let arn = match &info.principal.user_id {
        None => crate::auth::root_arn(&state.account),
        Some(_) => state
            .store
            .user_by_name(&info.principal.name)
            .await
            .ok()
            .flatten()
            .map_or_else(String::new, |u| user_arn(&state.account, &u.path, &u.name)),
    };
    let list = Page {
        marker: None,
        max_items: 100,
    };
    let mfa = match run_action(
        state,
        req,
        info,
        &IamAction::ListMfaDevices {
            user_name: None,
            page: list.clone(),
        },
    )
    .await
    {
        Ok(IamOutput::MfaDevices { devices, .. }) => Ok(devices
            .into_iter()
            .map(|d| MfaRow {
                serial: d.serial_number,
                enabled: d.enable_date.unwrap_or_default(),
            })
            .collect::<Vec<_>>()),
        Ok(_) => Ok(Vec::new()),
        Err(m) => Err(m),
    };
    let keys = match run_action(
        state,
        req,
        info,
        &IamAction::ListAccessKeys {
            user_name: None,
            page: list,
        },
    )
    .await
    {
        Ok(IamOutput::AccessKeys { keys, .. }) => {
            let mut rows = Vec::with_capacity(keys.len());
            for k in keys {
                let last_used = last_used(state, req, info, &k.access_key_id).await;
                rows.push(KeyRow {
                    active: k.status == "Active",
                    id: k.access_key_id,
                    status: k.status,
                    created: k.create_date,
                    last_used,
                });
            }
            Ok(rows)
        }
        Ok(_) => Ok(Vec::new()),
        Err(m) => Err(m),
    };
    let can_add_mfa = mfa.as_ref().is_ok_and(|d| d.len() < 8);
    let mfa_demanded = mfa
        .as_ref()
        .is_ok_and(|d| !d.iter().any(|r| !r.enabled.is_empty()))
        && mfa_demanded(state, info).await;
    render(
        200,
        &HomePage {
            layout: Layout::signed_in(state, info, csrf, "My security credentials")
                .current("home")
                .alert(message)
                .status(status),
            csrf: csrf.expose(),
            arn,
            mfa_at_sign_in: info.mfa.is_some(),
            is_user: info.principal.user_id.is_some(),
            mfa,
            can_add_mfa,
            mfa_demanded,
            keys,
        },
        None,
    )
}

/// Whether the principal is expected to use MFA: `--require-mfa`, the user's `mfa require` flag, or a
/// policy of the user's that tests `aws:MultiFactorAuthPresent` or `aws:MultiFactorAuthAge` (such as
/// AWS's "manage your own credentials with MFA"). The page then prompts to assign a device. When this
/// cannot be read, the prompt is shown.
async fn mfa_demanded(state: &AppState, info: &SessionInfo) -> bool {
    if state.mfa.required_for_all {
        return true;
    }
    let Some(user_id) = &info.principal.user_id else {
        return false;
    };
    if !matches!(
        state.store.user_mfa_required(user_id).await,
        Ok(Some(false))
    ) {
        return true;
    }
    match crate::authz::user_policy_set(state, user_id).await {
        Ok(set) => set.entries.iter().any(|e| {
            e.policy.condition_keys().iter().any(|k| {
                k.eq_ignore_ascii_case("aws:MultiFactorAuthPresent")
                    || k.eq_ignore_ascii_case("aws:MultiFactorAuthAge")
            })
        }),
        Err(_) => true,
    }
}

/// A key's last use as the page shows it (`GetAccessKeyLastUsed` as the signed-in principal): date,
/// service and region; `N/A` when never used; `-` when not allowed.
async fn last_used(state: &AppState, req: &Incoming<'_>, info: &SessionInfo, id: &str) -> String {
    let action = IamAction::GetAccessKeyLastUsed {
        access_key_id: id.to_owned(),
    };
    match run_action(state, req, info, &action).await {
        Ok(IamOutput::AccessKeyLastUsed {
            last_used_date: Some(date),
            service,
            region,
            ..
        }) => format!("{date} ({service}, {region})"),
        Ok(_) => "N/A".into(),
        Err(_) => "-".into(),
    }
}

/// The otpauth URI of a QR code the console draws: an issuer prefix and `issuer=` parameter, and the
/// account in the label, so that an authenticator app tells deployments apart (IAM's own `QRCodePNG`
/// keeps AWS's `name@account` label).
pub fn otpauth_uri(issuer: &str, user: &str, account: &str, seed: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~@".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    format!(
        "otpauth://totp/{}:{}@{}?secret={seed}&issuer={}",
        enc(issuer),
        enc(user),
        enc(account),
        enc(issuer)
    )
}

/// `/console/mfa/*`: assign a virtual MFA device (create it, show its QR code and secret, then enable it
/// with two consecutive codes; the root too, as `stsd admin mfa enroll --root` does), resynchronize one
/// (two consecutive codes, IAM users: IAM's `ResyncMFADevice` names a user) or remove one (deactivate,
/// then delete the virtual device).
pub(super) async fn mfa_device(
    state: &AppState,
    req: &Incoming<'_>,
    info: &SessionInfo,
    csrf: &Secret,
    path: &str,
    form: &Params,
) -> Reply {
    let user_name = info
        .principal
        .user_id
        .as_ref()
        .map(|_| info.principal.name.clone());
    let serial = form.get("serial").unwrap_or_default().to_owned();
    let code = |n: &str| form.get(n).unwrap_or_default().trim().to_owned();
    let actions: Vec<IamAction> = match (path, user_name) {
        ("/console/mfa/create", _) => vec![IamAction::CreateVirtualMfaDevice {
            name: form.get("name").unwrap_or_default().trim().to_owned(),
            path: "/".into(),
        }],
        ("/console/mfa/enable", Some(user_name)) => vec![IamAction::EnableMfaDevice {
            user_name,
            serial_number: serial.clone(),
            code1: code("code1"),
            code2: code("code2"),
        }],
        ("/console/mfa/enable", None) => {
            return match enable_root_device(
                state,
                req,
                info,
                &serial,
                &code("code1"),
                &code("code2"),
            )
            .await
            {
                Ok(()) => redirect(None),
                Err(m) => home(state, req, info, csrf, Some(&m)).await,
            };
        }
        ("/console/mfa/resync", Some(user_name)) => vec![IamAction::ResyncMfaDevice {
            user_name,
            serial_number: serial.clone(),
            code1: code("code1"),
            code2: code("code2"),
        }],
        ("/console/mfa/resync", None) => {
            return home(
                state,
                req,
                info,
                csrf,
                Some("The root's device cannot be resynchronized; remove it and assign it again."),
            )
            .await;
        }
        _ => vec![
            IamAction::DeactivateMfaDevice {
                user_name: None,
                serial_number: serial.clone(),
            },
            IamAction::DeleteVirtualMfaDevice {
                serial_number: serial.clone(),
            },
        ],
    };
    let resync = path == "/console/mfa/resync";
    for action in actions {
        match run_validated(state, req, info, &action).await {
            Err(m) => return home(state, req, info, csrf, Some(&m)).await,
            Ok(IamOutput::NewVirtualMfaDevice {
                serial_number,
                base32_seed,
                ..
            }) => {
                let seed = Secret::new(base32_seed);
                let uri = Secret::new(otpauth_uri(
                    super::mfa_issuer(state),
                    &info.principal.name,
                    &state.account,
                    seed.expose(),
                ));
                let qr = crate::qr::png(uri.expose())
                    .map(|png| {
                        use base64::Engine as _;
                        base64::engine::general_purpose::STANDARD.encode(png)
                    })
                    .unwrap_or_default();
                return render(
                    200,
                    &MfaAssignPage {
                        layout: Layout::signed_in(state, info, csrf, "Assign MFA device")
                            .current("home"),
                        csrf: csrf.expose(),
                        serial: &serial_number,
                        seed: seed.expose(),
                        qr_png_base64: &qr,
                        issuer: super::mfa_issuer(state),
                        label: &format!("{}@{}", info.principal.name, state.account),
                    },
                    None,
                );
            }
            Ok(_) => {}
        }
    }
    if resync {
        return credentials_page(
            state,
            req,
            info,
            csrf,
            None,
            Some("The MFA device was resynchronized."),
        )
        .await;
    }
    redirect(None)
}

/// Enables a new virtual device for the signed-in root (IAM's `EnableMFADevice` always names a user;
/// this is what `stsd admin mfa enroll --root` does), audited as `EnableMFADevice`.
async fn enable_root_device(
    state: &AppState,
    req: &Incoming<'_>,
    info: &SessionInfo,
    serial: &str,
    code1: &str,
    code2: &str,
) -> Result<(), String> {
    if info.principal.user_id.is_some() {
        return Err("Only the root enables a device for the root.".into());
    }
    let Some(actor) = super::actor(state, req, info).await else {
        return Err("Your user no longer exists.".into());
    };
    let result = crate::iam::Iam::new(state, actor)
        .enable_root_device(serial, code1, code2)
        .await;
    let mut event = serde_json::json!({"eventSource": "iam.amazonaws.com",
        "eventName": "EnableMFADevice", "eventType": "AwsApiCall",
        "userIdentity": super::identity(state, &info.principal),
        "requestParameters": {"serialNumber": serial}});
    if let (Err(e), Some(o)) = (&result, event.as_object_mut()) {
        o.insert("errorCode".into(), serde_json::json!(e.code));
        o.insert(
            "errorMessage".into(),
            serde_json::json!(crate::audit::clean(&e.message, 512)),
        );
    }
    super::audit(state, req, event);
    result.map_err(|e| e.message)
}

/// `/console/keys`: create (the secret is shown once, on this answer, and can be downloaded once as
/// CSV within a few minutes: `op=csv`), activate, deactivate, delete.
pub(super) async fn access_key(
    state: &AppState,
    req: &Incoming<'_>,
    cookie: &str,
    info: &SessionInfo,
    csrf: &Secret,
    form: &Params,
) -> Reply {
    let id = form.get("id").unwrap_or_default().to_owned();
    let action = match form.get("op") {
        Some("csv") => return csv_download(state, req, cookie, info, csrf, &id).await,
        Some("create") => IamAction::CreateAccessKey { user_name: None },
        Some(op @ ("activate" | "deactivate")) => IamAction::UpdateAccessKey {
            user_name: None,
            access_key_id: id,
            active: op == "activate",
        },
        Some("delete") => IamAction::DeleteAccessKey {
            user_name: None,
            access_key_id: id,
        },
        _ => return home(state, req, info, csrf, Some("Unknown operation.")).await,
    };
    match run_validated(state, req, info, &action).await {
        Err(m) => home(state, req, info, csrf, Some(&m)).await,
        Ok(IamOutput::NewAccessKey {
            key,
            secret_access_key,
        }) => {
            let secret = Secret::new(secret_access_key);
            if let Some(sessions) = &state.console {
                sessions.stash_new_key(cookie, &key.access_key_id, &secret, state.clock.now());
            }
            render(
                200,
                &KeyCreatedPage {
                    layout: Layout::signed_in(state, info, csrf, "Access key created")
                        .current("home")
                        .status(Some(
                            "This is the only time the secret access key can be viewed. Save it now.",
                        )),
                    csrf: csrf.expose(),
                    download_minutes: NEW_KEY_DOWNLOAD_SECS / 60,
                    id: &key.access_key_id,
                    secret: secret.expose(),
                },
                None,
            )
        }
        Ok(_) => redirect(None),
    }
}

/// `op=csv`: the new key in AWS's CSV format (`Access key ID,Secret access key`, one row), once,
/// within [`NEW_KEY_DOWNLOAD_SECS`] of its creation, as an attachment that is not stored.
async fn csv_download(
    state: &AppState,
    req: &Incoming<'_>,
    cookie: &str,
    info: &SessionInfo,
    csrf: &Secret,
    id: &str,
) -> Reply {
    let secret = state
        .console
        .as_ref()
        .and_then(|s| s.take_new_key(cookie, id, state.clock.now()));
    let Some(secret) = secret else {
        return home(
            state,
            req,
            info,
            csrf,
            Some("The secret access key can be downloaded only once, right after the key is created."),
        )
        .await;
    };
    let csv = Secret::new(format!(
        "Access key ID,Secret access key\r\n{id},{}\r\n",
        secret.expose()
    ));
    // AWS's file names; user names are `[\w+=,.@-]+`, safe in a quoted header value.
    let file = match &info.principal.user_id {
        None => "rootkey.csv".to_owned(),
        Some(_) => format!("{}_accessKeys.csv", info.principal.name),
    };
    let mut r = super::respond(200, String::new(), None);
    *r.body_mut() =
        http_body_util::Full::new(bytes::Bytes::copy_from_slice(csv.expose().as_bytes()));
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        h.insert(http::header::CONTENT_DISPOSITION, v);
    }
    r
}
