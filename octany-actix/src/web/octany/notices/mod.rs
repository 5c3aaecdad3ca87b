//! Notices: the e-mails a paying customer expects, sent by a built-in
//! billing listener through the outbox (so after the change committed,
//! whichever path brought it): a receipt when an order is paid (its PDF
//! attached when a [seller](crate::OctanyBuilder::seller) is configured),
//! a failed payment with the link to update the card, a cancellation with
//! the date access ends (an overdue invoice, for invoice customers), and,
//! from the background task's ticks, a reminder a week before a yearly plan
//! renews and three days before an invoice is due. In the recipient's language (the billing
//! method's person's `locale`), else the app's.
//!
//! Each is sent once: claimed in `octany_notices` before it is sent and
//! marked once the mail server accepted it (`mirror::notices` says what
//! that promises when a sender dies mid-send).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::metering::Slot;
use super::{Octany, OctanyBuilder};
use crate::domain::config::Locale;
use crate::domain::model::{BillingMethod, Order, Subscription};
use crate::domain::receipt::Receipt;
use crate::mirror::notices::Claim;
use crate::mirror::sync::{BillingEvent, Event, ListenerError, ListenerName, Listeners};

mod facts;
mod mail;

pub use mail::{FileMailer, Mail, MailError, Mailer, SmtpMailer};

/// A notice as written: subject, text, attachments.
type Written = (String, String, Vec<(String, String, Vec<u8>)>);

/// How many days before a yearly plan renews its reminder is sent.
pub(crate) const REMINDER_DAYS: i64 = 7;

/// An event older than this many days (by Octany's clock) mails nobody.
pub(crate) const STALE_DAYS: i64 = 7;

/// How many days before an invoice is due its reminder is sent.
pub(crate) const INVOICE_DAYS: i64 = 3;

/// The name of the built-in listener that sends notices.
const LISTENER: ListenerName = ListenerName::library("octany.notices");

/// How notices are sent: the mailer and the app's language.
#[derive(Clone)]
pub(crate) struct Notices {
    mailer: Arc<dyn Mailer>,
    locale: Locale,
}

impl OctanyBuilder {
    /// Sends the customer's notices through `mailer` (an [`SmtpMailer`],
    /// or a [`FileMailer`] in development), in `locale` unless the
    /// recipient's billing method names theirs: a receipt for each paid
    /// order, a failed payment with the update-card link, a cancellation
    /// with its end date. Each is sent once (see the module's
    /// documentation for what a crash mid-send means).
    ///
    /// ```no_run
    /// # fn demo(builder: octany_actix::OctanyBuilder) -> Result<(), octany_actix::notices::MailError> {
    /// use octany_actix::config::Locale;
    /// use octany_actix::notices::SmtpMailer;
    /// let mailer = SmtpMailer::new("smtps://user:password@smtp.example.com", "Billing <billing@example.com>")?;
    /// let builder = builder.notices(mailer, Locale::Sv);
    /// # let _ = builder; Ok(()) }
    /// ```
    pub fn notices(mut self, mailer: impl Mailer, locale: Locale) -> Self {
        self.notices = Some(Notices {
            mailer: Arc::new(mailer),
            locale,
        });
        self
    }
}

/// `listeners` with the notices' listener, when notices are on; the slot
/// to fill with the built `Octany`.
pub(super) fn with_notices_listener(
    listeners: Listeners,
    notices: Option<&Notices>,
) -> (Listeners, Slot) {
    let slot: Slot = Arc::default();
    if notices.is_none() {
        return (listeners, slot);
    }
    let handle = slot.clone();
    let listeners = listeners.on(LISTENER, move |event: Arc<Event>| {
        let handle = handle.clone();
        async move {
            let Some(octany) = super::metering::upgrade(&handle) else {
                // Shutting down: the outbox delivers it again later.
                return Err("octany-actix is not running".into());
            };
            octany.send_notices(&event).await
        }
    });
    (listeners, slot)
}

/// Hangs the reminders on `syncer`'s background ticks (they do nothing
/// when notices are off).
pub(super) fn hook_ticks(syncer: &crate::mirror::sync::Syncer, slot: &Slot) {
    let handle = slot.clone();
    syncer.on_tick(move || {
        let handle = handle.clone();
        async move {
            if let Some(octany) = super::metering::upgrade(&handle)
                && let Err(error) = octany.send_due_notices().await
            {
                tracing::warn!(%error, "the notices' reminders could not be read; tried again on the next tick");
            }
        }
    });
}

impl Octany {
    /// Sends `event`'s notices that were not sent before. The built-in
    /// listener runs it; running it again (a retry, another instance)
    /// sends nothing twice.
    #[doc(hidden)]
    pub async fn send_notices(&self, event: &Event) -> Result<(), ListenerError> {
        let Some(notices) = &self.inner.notices else {
            return Ok(());
        };
        // History is not news: a backfill's events, or one that happened
        // long ago (found late by a reconcile), mail nobody.
        let stale = event.occurred_at + chrono::Duration::days(STALE_DAYS) < self.clock().now();
        if event.origin == crate::mirror::sync::Origin::Backfill || stale {
            return Ok(());
        }
        let billable = event.billable.as_ref().map(ToString::to_string);
        for (kind, mail) in self.notices_of(notices.locale, event) {
            self.deliver(notices, &event.id, billable.clone(), kind, &mail)
                .await?;
        }
        Ok(())
    }

    /// Sends the reminders that are due: a yearly plan renewing within
    /// [`REMINDER_DAYS`] (once per subscription and renewal date). The
    /// background task runs it on every tick ([`Octany::spawn_background`](crate::Octany::spawn_background));
    /// running it again, or on another instance, sends nothing twice.
    #[doc(hidden)]
    pub async fn send_due_notices(&self) -> Result<(), ListenerError> {
        let Some(notices) = &self.inner.notices else {
            return Ok(());
        };
        let now = self.clock().now();
        let soon = now + chrono::Duration::days(REMINDER_DAYS);
        for row in self.mirror().renewing_between(now, soon).await? {
            let Some(subscription) = row.subscription() else {
                continue;
            };
            let yearly = subscription
                .product
                .as_ref()
                .and_then(|p| p.interval.as_deref())
                == Some("year");
            let (true, Some(renews)) = (yearly, subscription.renews_at) else {
                continue;
            };
            let key = format!("renewal:{}:{}", subscription.id, renews.timestamp());
            let Some(to) = recipient(subscription.billing_method.as_ref()) else {
                continue;
            };
            let locale = language(subscription.billing_method.as_ref(), notices.locale);
            let (subject, text) = self.reminder_text(&subscription, renews, locale);
            let mail = Mail {
                to,
                subject,
                text,
                attachments: Vec::new(),
                message_id: format!("<{key}.renewal_reminder@octany-actix>"),
                kind: "renewal_reminder".into(),
                locale,
                facts: self.subscription_facts(&subscription),
            };
            let billable = row.billable_ref.as_ref().map(ToString::to_string);
            if let Err(error) = self
                .deliver(notices, &key, billable, "renewal_reminder", &mail)
                .await
            {
                tracing::warn!(%error, subscription = %subscription.id, "a renewal reminder was not sent; tried again on the next tick");
            }
        }
        self.send_invoice_reminders(notices, now).await
    }

    /// An invoice due within [`INVOICE_DAYS`]: reminded once per
    /// subscription and due date. (Once it is overdue Octany reports the
    /// subscription unpaid, and the failed payment's notice says so.)
    async fn send_invoice_reminders(
        &self,
        notices: &Notices,
        now: DateTime<Utc>,
    ) -> Result<(), ListenerError> {
        let policy = self.settings().policy;
        for row in self.mirror().awaiting_invoices().await? {
            let Some(due) = crate::domain::model::Entitlement::invoice_due_at(&row, policy) else {
                continue;
            };
            if due <= now || due > now + chrono::Duration::days(INVOICE_DAYS) {
                continue;
            }
            let Some(subscription) = row.subscription() else {
                continue;
            };
            let Some(to) = recipient(subscription.billing_method.as_ref()) else {
                continue;
            };
            let key = format!("invoice:{}:{}", subscription.id, due.timestamp());
            let locale = language(subscription.billing_method.as_ref(), notices.locale);
            let (subject, text) = self.invoice_text(&subscription, due, locale);
            let mut facts = self.subscription_facts(&subscription);
            facts.push(("due_at".into(), due.format("%Y-%m-%d").to_string()));
            let mail = Mail {
                to,
                subject,
                text,
                attachments: Vec::new(),
                message_id: format!("<{key}.invoice_due@octany-actix>"),
                kind: "invoice_due".into(),
                locale,
                facts,
            };
            let billable = row.billable_ref.as_ref().map(ToString::to_string);
            if let Err(error) = self
                .deliver(notices, &key, billable, "invoice_due", &mail)
                .await
            {
                tracing::warn!(%error, subscription = %subscription.id, "an invoice reminder was not sent; tried again on the next tick");
            }
        }
        Ok(())
    }

    fn invoice_text(
        &self,
        subscription: &Subscription,
        due: DateTime<Utc>,
        locale: Locale,
    ) -> (String, String) {
        let plan = plan_name(subscription);
        let day = due.format("%Y-%m-%d");
        let link = subscription
            .invoices_url
            .clone()
            .unwrap_or_else(|| self.settings().route_url("").to_string());
        match locale {
            Locale::Sv => (
                format!("Fakturan för {plan} förfaller den {day}"),
                format!(
                    "Fakturan för {plan} ska vara betald senast den {day}; betala den för att behålla tillgången: {link}\n"
                ),
            ),
            Locale::En => (
                format!("Your invoice for {plan} is due on {day}"),
                format!("The invoice for {plan} is due on {day}; pay it to keep access: {link}\n"),
            ),
        }
    }

    /// Sends one notice unless it was sent (or is being sent) before.
    async fn deliver(
        &self,
        notices: &Notices,
        key: &str,
        billable: Option<String>,
        kind: &'static str,
        mail: &Mail,
    ) -> Result<(), ListenerError> {
        let row = crate::mirror::entity::notice::Model {
            event_id: key.to_owned(),
            kind: kind.to_owned(),
            billable_ref: billable,
            recipient: mail.to.clone(),
            state: "sending".into(),
            attempts: 1,
            claimed_at: self.clock().now(),
            sent_at: None,
            last_error: None,
        };
        match self.mirror().claim_notice(row, self.clock().now()).await? {
            Claim::Sent | Claim::Uncertain => return Ok(()),
            Claim::Busy => return Err(format!("the {kind} notice is being sent elsewhere").into()),
            Claim::Send => {}
        }
        match notices.mailer.send(mail).await {
            Ok(()) => {
                self.mirror()
                    .notice_sent(key, kind, self.clock().now())
                    .await?;
                Ok(())
            }
            Err(MailError::Refused(why)) => {
                self.mirror().notice_refused(key, kind, &why).await?;
                Err(format!("the {kind} notice was refused: {why}").into())
            }
            Err(MailError::Unknown(why)) => {
                tracing::error!(notice = %key, kind, %why, "a notice may or may not have been delivered; it is not sent again");
                self.mirror().notice_uncertain(key, kind, &why).await?;
                Ok(())
            }
        }
    }

    fn reminder_text(
        &self,
        subscription: &Subscription,
        renews: DateTime<Utc>,
        locale: Locale,
    ) -> (String, String) {
        let plan = plan_name(subscription);
        let day = renews.format("%Y-%m-%d");
        let price = subscription.price + subscription.vat;
        let price = crate::domain::receipt::amount(price, &subscription.currency);
        let page = self.settings().route_url("").to_string();
        match locale {
            Locale::Sv => (
                format!("{plan} förnyas den {day}"),
                format!(
                    "{plan} förnyas den {day} för {price} (inkl. moms). Vill du inte fortsätta kan du säga upp det innan dess: {page}\n"
                ),
            ),
            Locale::En => (
                format!("{plan} renews on {day}"),
                format!(
                    "{plan} renews on {day} for {price} (VAT included). If you do not want to go on, cancel before then: {page}\n"
                ),
            ),
        }
    }

    /// The states of `event_id`'s notices, by kind (for tests and tools).
    #[doc(hidden)]
    pub async fn notice_states(
        &self,
        event_id: &str,
    ) -> Result<Vec<(String, String)>, sea_orm::DbErr> {
        Ok(self
            .mirror()
            .notices_of_event(event_id)
            .await?
            .into_iter()
            .map(|n| (n.kind, n.state))
            .collect())
    }

    /// The notices `event` calls for, each with its kind.
    fn notices_of(&self, default: Locale, event: &Event) -> Vec<(&'static str, Mail)> {
        // A notice to the billing method's address, in its person's
        // language (else `default`): its subject, text and attachments.
        let mail = |kind: &'static str,
                    method: Option<&BillingMethod>,
                    facts: Vec<(String, String)>,
                    write: &dyn Fn(Locale) -> Written| {
            let to = recipient(method)?;
            let locale = language(method, default);
            let (subject, text, attachments) = write(locale);
            Some((
                kind,
                Mail {
                    to,
                    subject,
                    text,
                    attachments,
                    message_id: format!("<{}.{kind}@octany-actix>", event.id),
                    kind: kind.to_owned(),
                    locale,
                    facts,
                },
            ))
        };
        let made = match &event.event {
            BillingEvent::OrderPaid { order } => mail(
                "receipt",
                order.billing_method.as_ref(),
                self.order_facts(order),
                &|locale| {
                    let (subject, text) = self.receipt_text(order, locale);
                    let pdf = self.settings().seller.as_ref().map(|seller| {
                        let date = order.created_at.unwrap_or(event.occurred_at);
                        let name = match locale {
                            Locale::Sv => "kvitto",
                            Locale::En => "receipt",
                        };
                        (
                            format!("{name}-{}.pdf", order.id),
                            "application/pdf".to_owned(),
                            Receipt::of(order, date, seller).to_pdf(locale),
                        )
                    });
                    (subject, text, pdf.into_iter().collect())
                },
            ),
            BillingEvent::PaymentFailed { subscription } => mail(
                "payment_failed",
                subscription.billing_method.as_ref(),
                self.subscription_facts(subscription),
                &|locale| {
                    let (subject, text) = self.failed_text(subscription, locale);
                    (subject, text, Vec::new())
                },
            ),
            BillingEvent::SubscriptionCancelled { subscription } => mail(
                "cancelled",
                subscription.billing_method.as_ref(),
                self.subscription_facts(subscription),
                &|locale| {
                    let (subject, text) = cancelled_text(subscription, locale);
                    (subject, text, Vec::new())
                },
            ),
            _ => None,
        };
        made.into_iter().collect()
    }

    fn receipt_text(&self, order: &Order, locale: Locale) -> (String, String) {
        let total = crate::domain::receipt::amount(order.total_with_vat, &order.currency);
        let link = self.settings().seller.as_ref().map(|_| {
            self.settings()
                .route_url(&format!("receipts/{}", order.id))
                .to_string()
        });
        match locale {
            Locale::Sv => (
                format!("Kvitto {}", order.id),
                format!(
                    "Tack för din betalning på {total} (inkl. moms).\n\nOrder {}.{}\n",
                    order.id,
                    link.map(|l| format!("\nKvittot finns här och bifogat: {l}"))
                        .unwrap_or_default()
                ),
            ),
            Locale::En => (
                format!("Receipt {}", order.id),
                format!(
                    "Thank you for your payment of {total} (VAT included).\n\nOrder {}.{}\n",
                    order.id,
                    link.map(|l| format!("\nYour receipt is here and attached: {l}"))
                        .unwrap_or_default()
                ),
            ),
        }
    }

    fn failed_text(&self, subscription: &Subscription, locale: Locale) -> (String, String) {
        let plan = plan_name(subscription);
        let invoiced = subscription.billing_method.as_ref().is_some_and(|m| {
            matches!(
                m.kind,
                crate::domain::model::BillingMethodKind::Fortnox
                    | crate::domain::model::BillingMethodKind::Billecta
            )
        });
        if invoiced {
            let link = subscription
                .invoices_url
                .clone()
                .unwrap_or_else(|| self.settings().route_url("").to_string());
            return match locale {
                Locale::Sv => (
                    format!("Fakturan för {plan} är förfallen"),
                    format!(
                        "Fakturan för {plan} är inte betald och har förfallit; tillgången är pausad tills den är betald: {link}\n"
                    ),
                ),
                Locale::En => (
                    format!("Your invoice for {plan} is overdue"),
                    format!(
                        "The invoice for {plan} is not paid and is overdue; access is paused until it is: {link}\n"
                    ),
                ),
            };
        }
        let link = subscription
            .update_card_url
            .clone()
            .unwrap_or_else(|| self.settings().route_url("").to_string());
        match locale {
            Locale::Sv => (
                "Din betalning gick inte igenom".into(),
                format!(
                    "Vi kunde inte dra betalningen för {plan}. Uppdatera ditt kort här: {link}\n\nVi försöker igen de närmaste dagarna.\n"
                ),
            ),
            Locale::En => (
                "Your payment did not go through".into(),
                format!(
                    "We could not take the payment for {plan}. Update your card here: {link}\n\nWe will try again over the coming days.\n"
                ),
            ),
        }
    }
}

fn plan_name(subscription: &Subscription) -> String {
    subscription
        .product
        .as_ref()
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "your subscription".to_owned())
}

fn cancelled_text(subscription: &Subscription, locale: Locale) -> (String, String) {
    let plan = plan_name(subscription);
    let until = subscription
        .ends_at
        .map(|t: DateTime<Utc>| t.format("%Y-%m-%d").to_string());
    match locale {
        Locale::Sv => (
            "Ditt abonnemang är uppsagt".into(),
            match until {
                Some(day) => format!(
                    "{plan} är uppsagt. Du har kvar det till och med {day}, och inget mer dras.\n"
                ),
                None => format!("{plan} är uppsagt, och inget mer dras.\n"),
            },
        ),
        Locale::En => (
            "Your subscription is cancelled".into(),
            match until {
                Some(day) => format!(
                    "{plan} is cancelled. You keep it until {day}, and nothing more is charged.\n"
                ),
                None => format!("{plan} is cancelled, and nothing more is charged.\n"),
            },
        ),
    }
}

/// The billing method's person's language, else `default`.
fn language(method: Option<&BillingMethod>, default: Locale) -> Locale {
    method
        .and_then(|m| m.person.as_ref())
        .and_then(|p| p.locale.as_deref())
        .and_then(|l| l.get(..2))
        .and_then(|l| l.parse().ok())
        .unwrap_or(default)
}

/// The billing method's address: its own, else its person's.
fn recipient(method: Option<&BillingMethod>) -> Option<String> {
    let method = method?;
    method
        .email
        .clone()
        .or_else(|| method.person.as_ref().and_then(|p| p.email.clone()))
        .filter(|e| e.contains('@'))
}
