//! Notices (issue 31): the customer's e-mails, sent through a real SMTP
//! server in a process of its own (`smtp-sink`), each once: when its
//! listener is retried after a refusal, when two instances send it
//! together, and when the sender dies after the server accepted it (not
//! sent again: the promise is "never twice", at the price that a sender
//! killed before the server accepted leaves it unsent and reported).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use octany_actix::Octany;
use octany_actix::config::Locale;
use octany_actix::notices::{Mail, MailError, Mailer, SmtpMailer};
use octany_actix::sync::Event;

use super::*;

/// The SMTP server process; killed when dropped.
struct Sink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sink {
    fn start(refuse_first: usize) -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_smtp-sink"))
            .arg(dir.path())
            .args(["--refuse-first", &refuse_first.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("the SMTP sink starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .trim()
            .strip_prefix("listening ")
            .unwrap()
            .parse()
            .unwrap();
        Sink { child, port, dir }
    }

    fn mailer(&self) -> SmtpMailer {
        SmtpMailer::new(
            &format!("smtp://127.0.0.1:{}", self.port),
            "Billing <billing@exempel.se>",
        )
        .unwrap()
    }

    /// The mails it accepted.
    fn accepted(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|p: &PathBuf| std::fs::read_to_string(Path::new(p)).unwrap())
            .collect()
    }
}

fn seller() -> octany_actix::receipt::Seller {
    octany_actix::receipt::Seller {
        name: "Exempel AB".into(),
        organisation_number: "556677-8899".into(),
        vat_number: "SE556677889901".into(),
        address: vec!["Storgatan 1".into()],
        email: None,
    }
}

fn with_notices(
    db: &octany_actix_tests::TestDb,
    fake: &octany_fake::FakeOctany,
    mailer: impl Mailer,
) -> Octany {
    builder(db, fake, Duration::from_secs(5))
        .seller(seller())
        .notices(mailer, Locale::En)
        .build()
        .unwrap()
}

/// User 3 buys Basic (paying by card, `ada@example.com`); `receiver`
/// hears of its paid order by webhook. The `order.paid` event.
async fn paid_order(fake: &octany_fake::FakeOctany, receiver: &Octany) -> Event {
    let bought = fake
        .checkout(
            1227,
            &CheckoutParams {
                reference_id: Some("user:3".into()),
                email: Some("ada@example.com".into()),
                ..Default::default()
            },
            CheckoutOutcome::Succeed,
        )
        .unwrap();
    let order = bought.order.expect("a first order");
    let (body, signature) = signed(&envelope(
        8100,
        "order.paid",
        fake.now(),
        serde_json::to_value(&order).unwrap(),
    ));
    receiver
        .receiver()
        .receive(Some(&signature), &body)
        .await
        .unwrap();
    receiver
        .syncer()
        .events_of(&BillableRef::new("user", "3"))
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.event.kind() == "order.paid")
        .expect("the order.paid event")
}

db_test!(
    async fn a_receipt_is_mailed_once_however_often_its_listener_runs(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        // The server refuses the first try.
        let sink = Sink::start(1);
        let octany = with_notices(&db, &fake, sink.mailer());
        let event = paid_order(&fake, &octany).await;
        assert!(sink.accepted().is_empty(), "refused, not kept");
        assert_eq!(
            octany.notice_states(&event.id).await.unwrap(),
            [("receipt".to_owned(), "failed".to_owned())]
        );
        // The outbox tries the listener again after its pause.
        fake.advance(Duration::from_secs(11));
        octany.syncer().deliver_due().await.unwrap();
        let accepted = sink.accepted();
        assert_eq!(accepted.len(), 1, "{accepted:?}");
        let mail = &accepted[0];
        let order_id = match &event.event {
            octany_actix::sync::BillingEvent::OrderPaid { order } => order.id.to_string(),
            other => panic!("{other:?}"),
        };
        for expected in [
            "To: ada@example.com".to_owned(),
            format!("Subject: Receipt {order_id}"),
            format!("receipt-{order_id}.pdf"),
            "application/pdf".to_owned(),
            format!("Message-ID: <{}.receipt@octany-actix>", event.id),
        ] {
            assert!(mail.contains(&expected), "{expected} in {mail}");
        }
        assert_eq!(
            octany.notice_states(&event.id).await.unwrap(),
            [("receipt".to_owned(), "sent".to_owned())]
        );
        // History is not news: the same receipt from a backfill, or found
        // a month late, mails nobody.
        let other = with_notices(&db, &fake, sink.mailer());
        let mut late = event.clone();
        late.id = "late-one".into();
        late.occurred_at = fake.now() - chrono::Duration::days(30);
        other.send_notices(&late).await.unwrap();
        let mut backfilled = event.clone();
        backfilled.id = "backfilled-one".into();
        backfilled.origin = octany_actix::sync::Origin::Backfill;
        other.send_notices(&backfilled).await.unwrap();
        assert_eq!(sink.accepted().len(), 1, "no mail for history");
        // Run again, by this instance and another: nothing more is sent.
        octany.send_notices(&event).await.unwrap();
        with_notices(&db, &fake, sink.mailer())
            .send_notices(&event)
            .await
            .unwrap();
        fake.advance(Duration::from_secs(3600));
        octany.syncer().deliver_due().await.unwrap();
        assert_eq!(sink.accepted().len(), 1);
        fake.stop().await;
        db
    }
);

db_test!(
    async fn two_instances_sending_a_notice_together_send_it_once(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        let sink = Sink::start(0);
        // A third instance, with no notices, hears the webhook.
        let receiver = builder(&db, &fake, Duration::from_secs(5)).build().unwrap();
        let event = paid_order(&fake, &receiver).await;
        let (a, b) = (
            with_notices(&db, &fake, sink.mailer()),
            with_notices(&db, &fake, sink.mailer()),
        );
        let (first, second) = tokio::join!(a.send_notices(&event), b.send_notices(&event));
        // One sends; the other finds it sent, or being sent (and is retried).
        assert!(first.is_ok() || second.is_ok(), "{first:?} {second:?}");
        assert_eq!(sink.accepted().len(), 1);
        a.send_notices(&event).await.unwrap();
        b.send_notices(&event).await.unwrap();
        assert_eq!(sink.accepted().len(), 1);
        fake.stop().await;
        db
    }
);

/// A sender that dies right after the server accepted: its send never
/// returns (the process was killed before the mark).
struct DiesAfterAccept(SmtpMailer);

#[async_trait::async_trait]
impl Mailer for DiesAfterAccept {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        self.0.send(mail).await?;
        std::future::pending().await
    }
}

db_test!(
    async fn a_notice_whose_sender_died_after_the_server_accepted_is_not_sent_again(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        let sink = Sink::start(0);
        let receiver = builder(&db, &fake, Duration::from_secs(5)).build().unwrap();
        let event = paid_order(&fake, &receiver).await;
        let dying = with_notices(&db, &fake, DiesAfterAccept(sink.mailer()));
        let sending = {
            let (dying, event) = (dying.clone(), event.clone());
            tokio::spawn(async move { dying.send_notices(&event).await })
        };
        // The server has it: then the sender is killed, before the mark.
        tokio::time::timeout(Duration::from_secs(20), async {
            while sink.accepted().is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("accepted");
        sending.abort();
        let _ = sending.await;
        // Another instance: while the claim is fresh it waits (the outbox
        // retries); once stale, the notice is marked uncertain, not resent.
        let next = with_notices(&db, &fake, sink.mailer());
        assert!(
            next.send_notices(&event).await.is_err(),
            "being sent elsewhere"
        );
        fake.advance(Duration::from_secs(6 * 60));
        next.send_notices(&event).await.unwrap();
        assert_eq!(sink.accepted().len(), 1, "never sent twice");
        assert_eq!(
            next.notice_states(&event.id).await.unwrap(),
            [("receipt".to_owned(), "uncertain".to_owned())]
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_failed_payment_and_a_cancellation_are_mailed_with_what_to_do(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        let sink = Sink::start(0);
        let octany = with_notices(&db, &fake, sink.mailer());
        let buy = |user: i64, email: &str| CheckoutParams {
            reference_id: Some(format!("user:{user}")),
            email: Some(email.into()),
            ..Default::default()
        };
        let failing = fake
            .checkout(1227, &buy(3, "ada@example.com"), CheckoutOutcome::Succeed)
            .unwrap()
            .subscription
            .unwrap();
        fake.checkout(1227, &buy(5, "bo@example.com"), CheckoutOutcome::Succeed)
            .unwrap();
        let (ada, bo) = (TestUser::new(3), TestUser::new(5));
        octany.billing(&ada).sync().await.unwrap();
        octany.billing(&bo).sync().await.unwrap();
        // Bo cancels: told until when the plan is kept.
        let cancelled = octany.billing(&bo).cancel().await.unwrap();
        let until = cancelled.ends_at.unwrap().format("%Y-%m-%d").to_string();
        // Ada's card fails at the renewal: told where to update it.
        fake.set_card_failing(&failing.id, true).unwrap();
        fake.advance(Duration::from_secs(31 * 86_400));
        octany.billing(&ada).sync().await.unwrap();
        octany.syncer().deliver_due().await.unwrap();
        // Quoted-printable's soft line breaks joined up.
        let mails: Vec<String> = sink
            .accepted()
            .iter()
            .map(|m| m.replace("=\r\n", "").replace("=\n", ""))
            .collect();
        let to_bo = mails
            .iter()
            .find(|m| m.contains("To: bo@example.com") && m.contains("is cancelled"))
            .unwrap_or_else(|| panic!("bo's cancellation in {mails:?}"));
        assert!(
            to_bo.contains("Subject: Your subscription is cancelled"),
            "{to_bo}"
        );
        assert!(
            to_bo.contains(&format!("You keep it until {until}")),
            "{to_bo}"
        );
        let to_ada = mails
            .iter()
            .find(|m| m.contains("To: ada@example.com") && m.contains("did not go through"))
            .expect("ada's failed payment");
        assert!(to_ada.contains("Update your card here: http"), "{to_ada}");
        fake.stop().await;
        db
    }
);

db_test!(
    async fn a_yearly_plan_is_reminded_once_a_week_before_it_renews(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        let sink = Sink::start(0);
        let octany = with_notices(&db, &fake, sink.mailer());
        let buy = |user: i64, product: i64| {
            fake.checkout(
                product,
                &CheckoutParams {
                    reference_id: Some(format!("user:{user}")),
                    email: Some(format!("user{user}@example.com")),
                    ..Default::default()
                },
                CheckoutOutcome::Succeed,
            )
            .unwrap()
            .subscription
            .unwrap()
        };
        let yearly = buy(3, 1226);
        let monthly = buy(5, 1227);
        octany.billing(&TestUser::new(3)).sync().await.unwrap();
        octany.billing(&TestUser::new(5)).sync().await.unwrap();
        let renews = yearly.renews_at.unwrap();
        let reminders = |sink: &Sink| {
            sink.accepted()
                .into_iter()
                .filter(|m| m.contains("renews on"))
                .collect::<Vec<_>>()
        };
        // The monthly plan renews within the week: no reminder for it.
        fake.set_now(monthly.renews_at.unwrap() - chrono::Duration::days(3));
        octany.send_due_notices().await.unwrap();
        assert!(
            reminders(&sink).is_empty(),
            "monthly plans are not reminded"
        );
        // Eight days before: not yet.
        fake.set_now(renews - chrono::Duration::days(8));
        octany.send_due_notices().await.unwrap();
        assert!(reminders(&sink).is_empty());
        // Six days before: once, however often and wherever it runs.
        fake.set_now(renews - chrono::Duration::days(6));
        octany.billing(&TestUser::new(3)).sync().await.unwrap();
        octany.send_due_notices().await.unwrap();
        octany.send_due_notices().await.unwrap();
        with_notices(&db, &fake, sink.mailer())
            .send_due_notices()
            .await
            .unwrap();
        let sent = reminders(&sink);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(sent[0].contains("To: user3@example.com"), "{}", sent[0]);
        let day = renews.format("%Y-%m-%d").to_string();
        assert!(
            sent[0].contains(&format!("Subject: Pro yearly renews on {day}")),
            "{}",
            sent[0]
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn an_invoice_is_reminded_before_it_is_due_and_reported_overdue(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        let sink = Sink::start(0);
        let octany = with_notices(&db, &fake, sink.mailer());
        fake.checkout(
            1227,
            &CheckoutParams {
                reference_id: Some("user:3".into()),
                email: Some("ada@example.com".into()),
                ..Default::default()
            },
            CheckoutOutcome::Invoice,
        )
        .unwrap();
        let ada = TestUser::new(3);
        let billing = octany.billing(&ada);
        billing.sync().await.unwrap();
        let due = billing.invoice_due_at().await.unwrap().expect("an invoice");
        let about = |sink: &Sink, words: &str| {
            sink.accepted()
                .into_iter()
                .filter(|m| m.contains(words))
                .count()
        };
        fake.set_now(due - chrono::Duration::days(2));
        octany.send_due_notices().await.unwrap();
        octany.send_due_notices().await.unwrap();
        let day = due.format("%Y-%m-%d").to_string();
        assert_eq!(about(&sink, &format!("is due on {day}")), 1);
        // Past due, Octany reports it unpaid: the invoice is overdue.
        fake.set_now(due + chrono::Duration::days(1));
        billing.sync().await.unwrap();
        octany.syncer().deliver_due().await.unwrap();
        assert_eq!(about(&sink, "is overdue"), 1, "{:?}", sink.accepted());
        octany.send_due_notices().await.unwrap();
        assert_eq!(about(&sink, "is due on"), 1, "not reminded once overdue");
        fake.stop().await;
        db
    }
);

/// A host's own words: receipts rewritten from their facts.
struct OwnWords(SmtpMailer);

#[async_trait::async_trait]
impl Mailer for OwnWords {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let mut mail = mail.clone();
        if mail.kind == "receipt" && mail.locale == Locale::En {
            mail.subject = format!("Thanks for order {}", mail.fact("order").unwrap_or("?"));
            mail.text = format!("You paid {}.\n", mail.fact("total").unwrap_or("?"));
        }
        self.0.send(&mail).await
    }
}

db_test!(
    async fn a_host_writes_the_notices_in_its_own_words_from_their_facts(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        let sink = Sink::start(0);
        let octany = with_notices(&db, &fake, OwnWords(sink.mailer()));
        let event = paid_order(&fake, &octany).await;
        let octany_actix::sync::BillingEvent::OrderPaid { order } = &event.event else {
            panic!("{event:?}")
        };
        let total = format!(
            "{},{:02} SEK",
            order.total_with_vat / 100,
            order.total_with_vat % 100
        );
        let mail = sink.accepted().pop().expect("the receipt");
        assert!(
            mail.contains(&format!("Subject: Thanks for order {}", order.id)),
            "{mail}"
        );
        assert!(mail.contains(&format!("You paid {total}.")), "{mail}");
        assert!(
            mail.contains("application/pdf"),
            "the PDF still attached: {mail}"
        );
        fake.stop().await;
        db
    }
);
