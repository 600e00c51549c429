//! The mailers chatd offers: files in a directory (development) and SMTP.

use anyhow::Context as _;
use async_trait::async_trait;
use chatcore::store::{Mail, Mailer, StoreError, StoreResult};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{MailerSpec, SmtpSpec, StartTls};

/// Builds the mailer `spec` describes; `from` is the sender address.
pub(crate) async fn build(spec: &MailerSpec, from: &str) -> anyhow::Result<Arc<dyn Mailer>> {
    let from: Mailbox = from
        .parse()
        .with_context(|| format!("invalid --mail-from {from:?}"))?;
    match spec {
        MailerSpec::Dir(dir) => {
            tokio::fs::create_dir_all(dir)
                .await
                .with_context(|| format!("cannot create the mail directory {}", dir.display()))?;
            tracing::info!(dir = %dir.display(), "mail is written to files, not sent");
            Ok(Arc::new(DirMailer::new(dir.clone(), from)))
        }
        MailerSpec::Smtp(smtp) => {
            tracing::info!(
                host = %smtp.host,
                port = smtp.port,
                tls = if smtp.implicit_tls { "implicit" } else { starttls_name(smtp.starttls) },
                "mail is sent by SMTP"
            );
            Ok(Arc::new(SmtpMailer::new(smtp, from)?))
        }
    }
}

fn starttls_name(t: StartTls) -> &'static str {
    match t {
        StartTls::Required => "starttls",
        StartTls::Opportunistic => "opportunistic starttls",
        StartTls::Never => "none",
    }
}

/// Keeps header values on one line: nothing a user typed can add a header.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Writes each mail as an RFC 5322 `.eml` file (UTF-8 body, 8bit) into a
/// directory: for development, where nobody should need a mail server to
/// reset a password.
pub(crate) struct DirMailer {
    dir: PathBuf,
    from: Mailbox,
    seq: AtomicU64,
}

impl DirMailer {
    pub(crate) fn new(dir: PathBuf, from: Mailbox) -> Self {
        Self {
            dir,
            from,
            seq: AtomicU64::new(0),
        }
    }

    fn render(&self, mail: &Mail, now: std::time::SystemTime, id: &str) -> String {
        let body = mail.body.replace("\r\n", "\n").replace('\n', "\r\n");
        format!(
            "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id}@chatd>\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}",
            from = one_line(&self.from.to_string()),
            to = one_line(&mail.to),
            subject = one_line(&mail.subject),
            date = httpdate_like(now),
        )
    }
}

/// An RFC 2822 date in UTC, without a date-time dependency.
fn httpdate_like(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let weekday = WEEKDAYS[usize::try_from(days % 7).unwrap_or(0)];
    let month_name = MONTHS[usize::try_from(month - 1).unwrap_or(0)];
    format!("{weekday}, {day:02} {month_name} {year} {h:02}:{m:02}:{s:02} +0000")
}

#[async_trait]
impl Mailer for DirMailer {
    async fn send(&self, mail: Mail) -> StoreResult<()> {
        let now = std::time::SystemTime::now();
        let millis = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let to: String = mail
            .to
            .chars()
            .take(64)
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let id = format!("{millis}-{}-{n}", std::process::id());
        let text = self.render(&mail, now, &id);
        let name = format!("{id}-{to}.eml");
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let path = self.dir.join(&name);
        // Written aside then renamed, so a reader never sees half a mail.
        write_then_rename(&tmp, &path, text.into_bytes())
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot write {}: {e}", path.display()))
            })?;
        tracing::info!(file = %path.display(), "mail written");
        Ok(())
    }
}

async fn write_then_rename(tmp: &Path, path: &Path, bytes: Vec<u8>) -> std::io::Result<()> {
    tokio::fs::write(tmp, bytes).await?;
    tokio::fs::rename(tmp, path).await
}

/// Sends through an SMTP relay with lettre.
pub(crate) struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub(crate) fn new(spec: &SmtpSpec, from: Mailbox) -> anyhow::Result<Self> {
        let tls = || TlsParameters::new(spec.host.clone()).context("invalid TLS parameters");
        let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(spec.host.clone())
            .port(spec.port)
            .timeout(Some(Duration::from_secs(20)));
        let builder = if spec.implicit_tls {
            builder.tls(Tls::Wrapper(tls()?))
        } else {
            match spec.starttls {
                StartTls::Required => builder.tls(Tls::Required(tls()?)),
                StartTls::Opportunistic => builder.tls(Tls::Opportunistic(tls()?)),
                StartTls::Never => builder.tls(Tls::None),
            }
        };
        let builder = match &spec.credentials {
            Some((user, pass)) => {
                builder.credentials(Credentials::new(user.clone(), pass.0.clone()))
            }
            None => builder,
        };
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> StoreResult<()> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| StoreError::Unavailable(format!("cannot mail {:?}: {e}", mail.to)))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)
            .map_err(|e| StoreError::Unavailable(format!("cannot build mail: {e}")))?;
        self.transport
            .send(message)
            .await
            .map_err(|e| StoreError::Unavailable(format!("SMTP: {e}")))?;
        tracing::info!("mail sent by SMTP");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dir_mailer_writes_one_file_per_mail_without_header_injection() {
        let dir = std::env::temp_dir().join(format!("chatd-mail-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mailer = build(&MailerSpec::Dir(dir.clone()), "chatd <noreply@localhost>")
            .await
            .unwrap();
        mailer
            .send(Mail::new(
                "a@b.example",
                "Hi\r\nBcc: evil@x",
                "line 1\nline 2",
            ))
            .await
            .unwrap();
        mailer
            .send(Mail::new("c@d.example", "Second", "x"))
            .await
            .unwrap();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 2);
        let first = std::fs::read_to_string(&files[0]).unwrap();
        assert!(first.contains("To: a@b.example\r\n"), "{first}");
        assert!(first.contains("Subject: Hi  Bcc: evil@x\r\n"), "{first}");
        assert!(!first.contains("\r\nBcc:"), "{first}");
        assert!(first.ends_with("\r\n\r\nline 1\r\nline 2"), "{first}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dates_are_rfc2822() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661); // 2000-02-29
        assert_eq!(httpdate_like(t), "Tue, 29 Feb 2000 01:01:01 +0000");
        assert_eq!(
            httpdate_like(std::time::UNIX_EPOCH),
            "Thu, 01 Jan 1970 00:00:00 +0000"
        );
    }
}
