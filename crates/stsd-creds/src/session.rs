//! Getting a session for a profile: from the cache while more than the refresh margin is left, else — under
//! the profile's file lock, so that concurrent invocations share one call and one prompt — one MFA code and
//! one STS call, with one new code after a refused one.

use anyhow::{Result, anyhow, bail};
use time::OffsetDateTime;

use crate::cache::{Binding, Cache};
use crate::config::Settings;
use crate::mfa::{CodeSource, notice, obtain_code};
use crate::secret::SessionCredentials;
use crate::sts::{StsError, StsRequest, agent, call};

/// Choices from the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Refresh when fewer seconds than this are left.
    pub refresh_margin: u64,
    /// `--duration`, beating the profile's `duration_seconds`.
    pub duration: Option<u32>,
    /// `--mfa-code`.
    pub mfa_code: Option<String>,
    /// `--mfa-command`, beating the profile's `mfa_process`.
    pub mfa_command: Option<String>,
}

/// Sessions for one profile.
#[derive(Debug)]
pub struct Provider {
    settings: Settings,
    cache: Cache,
    opts: Options,
    agent: ureq::Agent,
}

impl Provider {
    /// A provider for resolved `settings`.
    ///
    /// # Errors
    /// A bad CA bundle.
    pub fn new(settings: Settings, cache: Cache, opts: Options) -> Result<Self> {
        let agent = agent(settings.ca_bundle.as_deref())?;
        Ok(Self {
            settings,
            cache,
            opts,
            agent,
        })
    }

    /// The resolved profile.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The refresh margin in seconds.
    pub fn margin(&self) -> u64 {
        self.opts.refresh_margin
    }

    /// What the profile's session is bound to.
    pub fn binding(&self) -> Binding {
        Binding {
            profile: self.settings.profile.clone(),
            source_access_key_id: self.settings.source.access_key_id.clone(),
            mfa_serial: self.settings.mfa_serial.clone(),
            role_arn: self.settings.role_arn.clone(),
            endpoint: self.settings.endpoint.clone(),
        }
    }

    fn cached_fresh(&self, binding: &Binding) -> Result<Option<SessionCredentials>> {
        let now = OffsetDateTime::now_utc();
        Ok(self
            .cache
            .load(binding)?
            .filter(|c| c.is_fresh(now, self.opts.refresh_margin)))
    }

    /// A session with more than the margin left: the cached one, or a new one (`force`: always new).
    ///
    /// # Errors
    /// STS errors (as `Code: Message` with the endpoint), MFA code problems, cache I/O.
    pub fn get(&self, force: bool) -> Result<SessionCredentials> {
        let binding = self.binding();
        if !force && let Some(c) = self.cached_fresh(&binding)? {
            return Ok(c);
        }
        let waited_from = OffsetDateTime::now_utc();
        let _lock = self.cache.lock(&binding.profile)?;
        // Another invocation may have refreshed while this one waited for the lock…
        if !force && let Some(c) = self.cached_fresh(&binding)? {
            return Ok(c);
        }
        // … or failed: then this one fails the same way instead of asking again (ten commands started at
        // once with a wrong code give one error each, not ten prompts).
        if let Some(f) = self.cache.failure_since(&binding.profile, waited_from)? {
            bail!(
                "{} (another stsd-creds for this profile just failed)",
                f.message
            );
        }
        match self.fetch() {
            Ok(creds) => {
                self.cache.store(&binding, &creds)?;
                self.cache.clear_failure(&binding.profile);
                Ok(creds)
            }
            Err(e) => {
                let _ = self.cache.record_failure(
                    &binding.profile,
                    &format!("{e:#}"),
                    OffsetDateTime::now_utc(),
                );
                Err(e)
            }
        }
    }

    fn code_source(&self) -> CodeSource {
        if let Some(code) = &self.opts.mfa_code {
            CodeSource::Given(code.clone())
        } else if let Some(cmd) = self
            .opts
            .mfa_command
            .as_ref()
            .or(self.settings.mfa_process.as_ref())
        {
            CodeSource::Command(cmd.clone())
        } else {
            CodeSource::Terminal
        }
    }

    /// One STS call (two when the first code is refused and another can be had). Call with the lock held.
    fn fetch(&self) -> Result<SessionCredentials> {
        let s = &self.settings;
        let mut req = StsRequest {
            endpoint: s.endpoint.clone(),
            region: s.region.clone(),
            role_arn: s.role_arn.clone(),
            role_session_name: s.role_session_name.clone().unwrap_or_else(|| {
                format!("stsd-creds-{}", OffsetDateTime::now_utc().unix_timestamp())
            }),
            external_id: s.external_id.clone(),
            duration_seconds: self.opts.duration.or(s.duration_seconds),
            mfa_serial: s.mfa_serial.clone(),
            mfa_code: None,
        };
        let source = self.code_source();
        // Profiles sharing a device take turns, so two of them never send the same code.
        let _device_lock = match &s.mfa_serial {
            Some(serial) => Some(self.cache.lock_device(serial)?),
            None => None,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(serial) = &s.mfa_serial {
                let code = obtain_code(&source, serial, &self.cache, &s.profile)?;
                self.cache
                    .record_code(serial, &code, OffsetDateTime::now_utc())?;
                req.mfa_code = Some(code);
            }
            match call(&self.agent, &req, &s.source, OffsetDateTime::now_utc()) {
                Ok(c) => return Ok(c),
                Err(e) => {
                    let refused = e
                        .downcast_ref::<StsError>()
                        .is_some_and(StsError::is_refused_code);
                    if refused && attempt == 1 && source.can_retry() && s.mfa_serial.is_some() {
                        let detail = e
                            .downcast_ref::<StsError>()
                            .map(|x| format!("{}: {}", x.code, x.message.trim()))
                            .unwrap_or_default();
                        notice(&format!(
                            "the MFA code was refused by {} ({detail}); trying once more with the next code",
                            s.endpoint
                        ));
                        continue;
                    }
                    return Err(match e.downcast::<StsError>() {
                        Ok(sts) => anyhow!("{sts}"),
                        Err(other) => other,
                    });
                }
            }
        }
    }
}
