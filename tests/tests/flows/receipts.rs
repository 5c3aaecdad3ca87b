//! Receipts (issue 31): a paid order's receipt as a page and a PDF, with
//! the seller's and the buyer's details and the VAT per rate; the same
//! bytes on every render; another billable's order answered 404.

use octany_actix::receipt::Seller;

use super::*;

fn seller() -> Seller {
    Seller {
        name: "Exempel AB".into(),
        organisation_number: "556677-8899".into(),
        vat_number: "SE556677889901".into(),
        address: vec!["Storgatan 1".into(), "111 22 Stockholm".into()],
        email: Some("billing@exempel.se".into()),
    }
}

/// The text of a PDF's first page, read back as a PDF reader would.
fn pdf_text(bytes: &[u8]) -> String {
    let document = lopdf::Document::load_mem(bytes).expect("a readable PDF");
    document.extract_text(&[1]).expect("its text")
}

db_test!(
    async fn a_paid_order_has_a_receipt_as_a_page_and_the_same_pdf_every_time(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        let octany = builder(&db, &fake, Duration::from_secs(5))
            .seller(seller())
            .build()
            .unwrap();
        let app = octany_actix_tests::serving!(octany);
        let user = TestUser::new(3);
        fake.checkout(1227, &buyer(3), CheckoutOutcome::Succeed)
            .unwrap();
        let billing = octany.billing(&user);
        billing.sync().await.unwrap();
        let order = billing.charge("receipt-1", add_on(None)).await.unwrap();
        let at_octany = fake
            .order(&octany_actix::model::OrderId::new(order.id.clone()))
            .unwrap();
        let vat = at_octany.total_with_vat - at_octany.total;
        assert!(vat > 0, "{at_octany:?}");
        let sv = |minor: i64| format!("{},{:02} kr", minor / 100, minor % 100);

        // The page, in Swedish.
        let page = call(
            &app,
            "GET",
            &format!("/billing/receipts/{}?lang=sv", order.id),
            Some(3),
            true,
        )
        .await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        let html = page.body.as_str().unwrap().to_owned();
        for expected in [
            format!("Kvitto {}", order.id),
            "Exempel AB".to_owned(),
            "SE556677889901".to_owned(),
            "556677-8899".to_owned(),
            "Extra seats".to_owned(),
            "Moms 25 %".to_owned(),
            sv(vat),
            sv(at_octany.total_with_vat),
        ] {
            assert!(html.contains(&expected), "{expected} in {html}");
        }

        // The PDF: the same bytes twice, and the right sums in its text.
        let path = format!("/billing/receipts/{}/pdf?lang=en", order.id);
        let mut renders = Vec::new();
        for _ in 0..2 {
            let answer = actix_web::test::call_service(
                &app,
                actix_web::test::TestRequest::get()
                    .uri(&path)
                    .insert_header(("X-User", "3"))
                    .to_request(),
            )
            .await;
            assert_eq!(answer.status(), 200);
            assert_eq!(
                answer.headers().get("content-type").unwrap(),
                "application/pdf"
            );
            renders.push(actix_web::test::read_body(answer).await);
        }
        let (first, again) = (&renders[0], &renders[1]);
        assert!(first.starts_with(b"%PDF-"));
        assert_eq!(first, again, "a receipt renders the same bytes");
        let text = pdf_text(first);
        let en = |minor: i64| format!("SEK {}.{:02}", minor / 100, minor % 100);
        for expected in [
            format!("Receipt {}", order.id),
            "VAT number: SE556677889901".to_owned(),
            "Total excl. VAT".to_owned(),
            en(at_octany.total),
            format!("VAT 25% (on {})", en(at_octany.total)),
            en(vat),
            en(at_octany.total_with_vat),
        ] {
            assert!(text.contains(&expected), "{expected} in {text}");
        }

        // Another billable's order, an unknown one: the same 404.
        let theirs = call(
            &app,
            "GET",
            &format!("/billing/receipts/{}", order.id),
            Some(4),
            false,
        )
        .await;
        assert_eq!(theirs.status, 404, "{:?}", theirs.body);
        assert_eq!(theirs.body["error"], "no_such_receipt");
        let pdf = call(
            &app,
            "GET",
            &format!("/billing/receipts/{}/pdf", order.id),
            Some(4),
            false,
        )
        .await;
        assert_eq!(pdf.status, 404);
        let unknown = call(&app, "GET", "/billing/receipts/999999", Some(3), false).await;
        assert_eq!(unknown.body["error"], "no_such_receipt");
        // Who may not manage the billing sees no receipt either.
        assert!(matches!(
            octany.billing(&super::Viewer(3)).receipt(&order.id).await,
            Err(BillingError::NotAllowed { .. })
        ));

        // Without a seller there are no receipts.
        let plain = builder(&db, &fake, Duration::from_secs(5)).build().unwrap();
        let plain_app = octany_actix_tests::serving!(plain);
        let off = call(
            &plain_app,
            "GET",
            &format!("/billing/receipts/{}", order.id),
            Some(3),
            false,
        )
        .await;
        assert_eq!(
            (off.status, off.body["error"].clone()),
            (404, json!("receipts_off"))
        );
        fake.stop().await;
        db
    }
);

db_test!(
    async fn the_billing_page_shows_plans_actions_orders_with_vat_and_receipts(db: TestDb) {
        let fake = octany_actix_tests::http::fake().await;
        let octany = builder(&db, &fake, Duration::from_secs(5))
            .seller(seller())
            .stylesheet("/static/billing.css")
            .build()
            .unwrap();
        let app = octany_actix_tests::serving!(octany);
        fake.checkout(1227, &buyer(3), CheckoutOutcome::Succeed)
            .unwrap();
        let user = TestUser::new(3);
        let billing = octany.billing(&user);
        billing.sync().await.unwrap();
        let order = billing.charge("page-1", add_on(None)).await.unwrap();
        let page = call(&app, "GET", "/billing", Some(3), true).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        let html = page.body.as_str().unwrap().to_owned();
        for expected in [
            "id=\"plan-basic\"",
            "Active; renews on",
            "href=\"/billing/cancel?plan=basic\"",
            "href=\"/pricing\"",
            "/static/billing.css",
            &format!("id=\"order-{}\"", order.id),
            "62,50 SEK",
            "12,50 SEK",
            &format!("href=\"/billing/receipts/{}\"", order.id),
            &format!("href=\"/billing/receipts/{}/pdf\"", order.id),
        ] {
            assert!(html.contains(expected), "{expected} in {html}");
        }
        // Someone else's page shows nothing of this one's.
        let theirs = call(&app, "GET", "/billing/", Some(4), true).await;
        let theirs = theirs.body.as_str().unwrap().to_owned();
        assert!(theirs.contains("id=\"no-plan\""), "{theirs}");
        assert!(!theirs.contains(&order.id), "{theirs}");
        // Cancelled: said plainly, until when it is kept, no cancel action.
        billing.cancel().await.unwrap();
        let page = call(&app, "GET", "/billing", Some(3), true).await;
        let html = page.body.as_str().unwrap().to_owned();
        assert!(html.contains("Cancelled: you keep"), "{html}");
        assert!(!html.contains("/billing/cancel?plan=basic"), "{html}");
        fake.stop().await;
        db
    }
);
