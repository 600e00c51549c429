use argon2::password_hash::{rand_core::OsRng, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordVerifier, Version};
use std::sync::Arc;
use tokio::sync::Semaphore;
use zxcvbn::feedback::Warning;

use crate::error::CoreError;

/// The password rules. Every broken rule is reported, by a stable code:
/// `too_short`, `too_long`, `contains_username`, `contains_email`, `common`,
/// `too_guessable`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PasswordPolicy {
    /// Minimum length in characters.
    pub min_chars: usize,
    /// Maximum length in characters (argon2 would take more; this bounds the work per attempt).
    pub max_chars: usize,
    /// Minimum zxcvbn score (0 to 4); 3 is "safely unguessable".
    pub min_score: u8,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars: 10,
            max_chars: 128,
            min_score: 3,
        }
    }
}

impl PasswordPolicy {
    /// Every rule `password` breaks for an account with this username and
    /// email, with a human explanation. Empty when it is acceptable. CPU-bound
    /// (zxcvbn): call it from blocking context for untrusted input.
    pub fn violations(&self, password: &str, username: &str, email: &str) -> (Vec<String>, String) {
        let mut codes = Vec::new();
        let mut explain = Vec::new();
        let chars = password.chars().count();
        if chars < self.min_chars {
            codes.push("too_short".to_owned());
            explain.push(format!("use at least {} characters", self.min_chars));
        }
        if chars > self.max_chars {
            codes.push("too_long".to_owned());
            explain.push(format!("use at most {} characters", self.max_chars));
            // zxcvbn on very long input is slow and pointless: it is refused anyway.
            return (codes, explain.join("; "));
        }
        let lower = password.to_lowercase();
        let name = username.trim().to_lowercase();
        if name.chars().count() >= 3 && lower.contains(&name) {
            codes.push("contains_username".to_owned());
            explain.push("do not build it from your username".to_owned());
        }
        let email = email.trim().to_lowercase();
        let local = email.split('@').next().unwrap_or_default();
        if local.chars().count() >= 3 && (lower.contains(local) || lower.contains(&email)) {
            codes.push("contains_email".to_owned());
            explain.push("do not build it from your email address".to_owned());
        }
        if !password.is_empty() {
            let entropy = zxcvbn::zxcvbn(password, &[username, &email, local]);
            let warning = entropy.feedback().and_then(|f| f.warning());
            let common = matches!(
                warning,
                Some(
                    Warning::ThisIsATop10Password
                        | Warning::ThisIsATop100Password
                        | Warning::ThisIsACommonPassword
                        | Warning::ThisIsSimilarToACommonlyUsedPassword
                )
            );
            if common {
                codes.push("common".to_owned());
                explain.push("it is among the most common passwords".to_owned());
            } else if u8::from(entropy.score()) < self.min_score {
                codes.push("too_guessable".to_owned());
                explain.push(match warning {
                    Some(w) => format!("it is too easy to guess ({w})"),
                    None => "it is too easy to guess: add words or characters".to_owned(),
                });
            }
        }
        (codes, explain.join("; "))
    }
}

/// argon2id cost. The default is OWASP's minimum: 19 MiB, 2 passes, 1 lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Argon2Config {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for Argon2Config {
    fn default() -> Self {
        Self {
            m_kib: 19 * 1024,
            t: 2,
            p: 1,
        }
    }
}

impl Argon2Config {
    /// A cost of `m_kib` KiB, `t` passes, `p` lanes. Anything below the
    /// default is for tests only.
    pub fn new(m_kib: u32, t: u32, p: u32) -> Self {
        Self { m_kib, t, p }
    }
}

/// Result of verifying a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashOutcome {
    /// Wrong password (or unreadable stored hash).
    Mismatch,
    /// Right password. If the stored hash used older (cheaper) parameters
    /// than the current ones, `rehash` holds a new hash to store.
    Match {
        /// A fresh hash at the current cost, when the stored one is weaker.
        rehash: Option<String>,
    },
}

/// A job for the hashing threads.
type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords on threads of its own, at most
/// `concurrency` at a time, so argon2 never stalls the async workers and a
/// login storm queues instead of exhausting memory (each hash takes `m_kib`).
///
/// The threads run at the lowest scheduling priority (nice 19): when a core
/// is shared between hashing and the async workers, the scheduler lets the
/// workers (message relay) run first, and logins take the leftover time
/// instead of adding tens of milliseconds to every message's latency.
pub struct PasswordHasher {
    cost: Argon2Config,
    permits: Arc<Semaphore>,
    jobs: std::sync::mpsc::Sender<Job>,
    /// A hash of a random password at the current cost: verified against
    /// when the account does not exist, so timing does not tell.
    dummy: String,
}

impl PasswordHasher {
    /// A hasher at `cost`, running at most `concurrency` hashes at once on
    /// as many low-priority threads (which end when the hasher is dropped).
    pub fn new(cost: Argon2Config, concurrency: usize) -> Result<Self, CoreError> {
        let dummy = hash_blocking(cost, &uuid::Uuid::new_v4().to_string())?;
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for n in 0..concurrency.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("chatcore-hash-{n}"))
                .spawn(move || {
                    // Best effort: without the right to lower it, hashing
                    // simply competes at normal priority.
                    let _ = thread_priority::set_current_thread_priority(
                        thread_priority::ThreadPriority::Min,
                    );
                    loop {
                        let job = {
                            let queue = queue.lock().unwrap_or_else(|p| p.into_inner());
                            match queue.recv() {
                                Ok(job) => job,
                                Err(_) => return,
                            }
                        };
                        // A panicking job loses its reply (the caller gets an
                        // error), not the thread.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })
                .map_err(|e| CoreError::Internal(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Self {
            cost,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            jobs,
            dummy,
        })
    }

    /// Runs CPU-bound `f` on the hashing threads, within the concurrency bound.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, CoreError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CoreError::Unavailable("password hasher shut down".into()))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| CoreError::Unavailable("password hasher shut down".into()))?;
        rx.await
            .map_err(|_| CoreError::Internal("hashing task failed".into()))
    }

    /// A new argon2id PHC string for `password`.
    pub async fn hash(&self, password: String) -> Result<String, CoreError> {
        let cost = self.cost;
        self.blocking(move || hash_blocking(cost, &password))
            .await?
    }

    /// Checks `password` against `stored` (a PHC string); `None` means there
    /// is no account, and a dummy hash is verified so the answer takes as long.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<HashOutcome, CoreError> {
        let cost = self.cost;
        let real = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy.clone());
        self.blocking(move || {
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return Ok(HashOutcome::Mismatch);
            };
            if Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_err()
                || !real
            {
                return Ok(HashOutcome::Mismatch);
            }
            let rehash = if is_weaker(&parsed, cost) {
                Some(hash_blocking(cost, &password)?)
            } else {
                None
            };
            Ok(HashOutcome::Match { rehash })
        })
        .await?
    }
}

/// Whether a stored hash is of another algorithm or cheaper than `cost`.
fn is_weaker(parsed: &PasswordHash<'_>, cost: Argon2Config) -> bool {
    if parsed.algorithm != Algorithm::Argon2id.ident()
        || parsed.version != Some(Version::V0x13.into())
    {
        return true;
    }
    match Params::try_from(parsed) {
        Ok(p) => p.m_cost() < cost.m_kib || p.t_cost() < cost.t || p.p_cost() < cost.p,
        Err(_) => true,
    }
}

fn hash_blocking(cost: Argon2Config, password: &str) -> Result<String, CoreError> {
    let params = Params::new(cost.m_kib, cost.t, cost.p, None)
        .map_err(|e| CoreError::Internal(format!("bad argon2 parameters: {e}")))?;
    let salt = SaltString::generate(&mut OsRng);
    argon2::PasswordHasher::hash_password(
        &Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        password.as_bytes(),
        &salt,
    )
    .map(|h| h.to_string())
    .map_err(|e| CoreError::Internal(format!("argon2 failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(pw: &str) -> Vec<String> {
        PasswordPolicy::default()
            .violations(pw, "alice", "alice@example.com")
            .0
    }

    #[test]
    fn each_rule_is_reported() {
        assert!(codes("short").contains(&"too_short".to_owned()));
        assert!(codes(&"x".repeat(129)).contains(&"too_long".to_owned()));
        assert!(codes("alice-is-the-best-2024").contains(&"contains_username".to_owned()));
        assert!(codes("password123").contains(&"common".to_owned()));
        assert!(codes("aaaaaaaaaaaa")
            .iter()
            .any(|c| c == "too_guessable" || c == "common"));
        assert!(codes("correct horse battery staple 9").is_empty());
    }

    #[tokio::test]
    async fn hashes_are_argon2id_at_the_configured_cost_and_verify() {
        let h = PasswordHasher::new(Argon2Config::new(1024, 1, 1), 2).unwrap();
        let phc = h.hash("s3cret-enough".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{phc}");
        assert_eq!(
            h.verify("s3cret-enough".into(), Some(phc.clone()))
                .await
                .unwrap(),
            HashOutcome::Match { rehash: None }
        );
        assert_eq!(
            h.verify("wrong".into(), Some(phc)).await.unwrap(),
            HashOutcome::Mismatch
        );
        assert_eq!(
            h.verify("x".into(), None).await.unwrap(),
            HashOutcome::Mismatch
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_runs_at_the_lowest_priority_off_the_async_workers() {
        fn nice() -> Option<String> {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
            let rest = stat.get(stat.rfind(')')? + 2..)?;
            rest.split(' ').nth(16).map(str::to_owned)
        }
        let h = PasswordHasher::new(Argon2Config::new(64, 1, 1), 2).unwrap();
        let (nice_there, name) = h
            .blocking(|| (nice(), std::thread::current().name().map(str::to_owned)))
            .await
            .unwrap();
        assert_eq!(nice_there.as_deref(), Some("19"));
        assert!(name.unwrap_or_default().starts_with("chatcore-hash-"));
        assert_eq!(
            nice().as_deref(),
            Some("0"),
            "the caller's thread is untouched"
        );
        assert!(
            h.blocking(|| panic!("a bad job")).await.is_err(),
            "a panic is an error"
        );
        assert_eq!(
            h.blocking(|| 7).await.unwrap(),
            7,
            "and the threads survive it"
        );
    }

    #[tokio::test]
    async fn older_cheaper_hashes_are_rehashed_on_login() {
        let old = PasswordHasher::new(Argon2Config::new(512, 1, 1), 1).unwrap();
        let phc = old.hash("pw-long-enough".into()).await.unwrap();
        let new = PasswordHasher::new(Argon2Config::new(1024, 2, 1), 1).unwrap();
        match new
            .verify("pw-long-enough".into(), Some(phc))
            .await
            .unwrap()
        {
            HashOutcome::Match { rehash: Some(h) } => assert!(h.contains("m=1024,t=2,p=1"), "{h}"),
            other => panic!("expected a rehash, got {other:?}"),
        }
    }
}
