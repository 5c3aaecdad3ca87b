//! Sending a mail: the [`Mailer`] a host picks, over SMTP ([`SmtpMailer`],
//! lettre) or into a directory for development ([`FileMailer`]).

use std::path::PathBuf;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// One mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// The subject.
    pub subject: String,
    /// The body, plain text.
    pub text: String,
    /// Files attached: (name, MIME type, bytes).
    pub attachments: Vec<(String, String, Vec<u8>)>,
    /// Its `Message-ID`, the same each time it is built (from the billing
    /// event and the notice), so a copy sent by hand is recognised.
    pub message_id: String,
    /// Which notice it is: `receipt`, `payment_failed`, `cancelled`,
    /// `renewal_reminder` or `invoice_due`.
    pub kind: String,
    /// The language it is written in.
    pub locale: crate::domain::config::Locale,
    /// What it is about, for a host's own templates: `plan`, `price`,
    /// `renews_at`, `ends_at`, `due_at`, `order`, `total`, and the links
    /// `update_card`, `invoices`, `receipt`, `billing`, where they apply.
    /// To write the notices in your own words, wrap your mailer and
    /// rewrite `subject` and `text` from these by `kind` and `locale`.
    pub facts: Vec<(String, String)>,
}

impl Mail {
    /// The fact `name`, if this notice has it.
    pub fn fact(&self, name: &str) -> Option<&str> {
        self.facts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Nothing was accepted (the server was unreachable, or answered the
    /// mail with an error code): it can be tried again.
    #[error("the mail was refused: {0}")]
    Refused(String),
    /// The connection was lost mid-send: the server may have accepted it.
    /// It is not tried again (a notice is never sent twice).
    #[error("the mail may or may not have been accepted: {0}")]
    Unknown(String),
}

/// Sends mails for the notices ([`OctanyBuilder::notices`](crate::OctanyBuilder::notices)).
/// `Ok` means the mail server accepted it.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends `mail`.
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// A boxed mailer (one picked at run time) is a mailer.
#[async_trait::async_trait]
impl<M: Mailer + ?Sized> Mailer for Box<M> {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        (**self).send(mail).await
    }
}

/// The lettre message of `mail` from `from`.
fn message(mail: &Mail, from: &Mailbox) -> Result<Message, MailError> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|e| MailError::Refused(format!("the address `{}`: {e}", mail.to)))?;
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .message_id(Some(mail.message_id.clone()));
    let text = SinglePart::plain(mail.text.clone());
    let built = if mail.attachments.is_empty() {
        builder.singlepart(text)
    } else {
        let mut parts = MultiPart::mixed().singlepart(text);
        for (name, kind, bytes) in &mail.attachments {
            let kind = ContentType::parse(kind).unwrap_or(ContentType::TEXT_PLAIN);
            parts = parts.singlepart(Attachment::new(name.clone()).body(bytes.clone(), kind));
        }
        builder.multipart(parts)
    };
    built.map_err(|e| MailError::Refused(e.to_string()))
}

/// Sends over SMTP with lettre.
///
/// ```no_run
/// # fn demo() -> Result<(), octany_actix::notices::MailError> {
/// use octany_actix::notices::SmtpMailer;
/// // `smtps://` (TLS), `smtp://…?tls=required` (STARTTLS), or plain
/// // `smtp://` on a trusted host.
/// let mailer = SmtpMailer::new("smtps://user:password@smtp.example.com", "Billing <billing@example.com>")?;
/// # let _ = mailer; Ok(()) }
/// ```
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL's password stays out of logs.
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for the server at `url` (lettre's SMTP URL), sending as
    /// `from`.
    pub fn new(url: &str, from: &str) -> Result<Self, MailError> {
        crate::client::install_crypto_provider();
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Refused(format!("the SMTP URL: {e}")))?
            .build();
        let from = from
            .parse()
            .map_err(|e| MailError::Refused(format!("the sender `{from}`: {e}")))?;
        Ok(Self { transport, from })
    }
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = message(mail, &self.from)?;
        // Reached first, so a server that is down is a refusal (tried
        // again), and only a connection lost mid-send is unknown.
        match self.transport.test_connection().await {
            Ok(true) => {}
            Ok(false) => return Err(MailError::Refused("the SMTP server did not answer".into())),
            Err(error) => return Err(MailError::Refused(error.to_string())),
        }
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_transient() || error.is_permanent() => {
                Err(MailError::Refused(error.to_string()))
            }
            Err(error) => Err(MailError::Unknown(error.to_string())),
        }
    }
}

/// Writes each mail into a directory as an `.eml` file, for development
/// (a page of caught mails can list them).
#[derive(Debug, Clone)]
pub struct FileMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl FileMailer {
    /// Writes into `dir` (made if missing), as from `from`.
    pub fn new(dir: impl Into<PathBuf>, from: &str) -> Result<Self, MailError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| MailError::Refused(format!("{}: {e}", dir.display())))?;
        let from = from
            .parse()
            .map_err(|e| MailError::Refused(format!("the sender `{from}`: {e}")))?;
        Ok(Self { dir, from })
    }
}

#[async_trait::async_trait]
impl Mailer for FileMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = message(mail, &self.from)?;
        let name: String = mail
            .message_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.dir.join(format!("{name}.eml"));
        let bytes = message.formatted();
        tokio::task::spawn_blocking(move || {
            std::fs::write(&path, bytes)
                .map_err(|e| MailError::Refused(format!("{}: {e}", path.display())))
        })
        .await
        .map_err(|e| MailError::Refused(e.to_string()))?
    }
}
