//! The example walked over HTTP as a person would: refused, signed in,
//! checkout, pay, in; cancel on the mounted page, still in to the period's
//! end.

use reqwest::header::LOCATION;

fn location(response: &reqwest::Response) -> String {
    response.headers()[LOCATION].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_person_signs_in_pays_gets_in_and_cancels() {
    let (url, fake, server) = octany_example_minimal::start("127.0.0.1:0").await.unwrap();
    tokio::spawn(server);
    octany_actix::install_crypto_provider();
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| browser.get(format!("{url}{path}")).header("Accept", "text/html").send();

    assert_eq!(get("/dashboard").await.unwrap().status(), 401, "not signed in");
    let signed_in = browser
        .post(format!("{url}/login"))
        .form(&[("email", "ada@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!((signed_in.status().as_u16(), location(&signed_in)), (303, "/".into()));
    let refused = get("/dashboard").await.unwrap();
    assert_eq!(refused.status(), 303, "signed in, not paying");
    assert!(
        location(&refused) == "/" || location(&refused).starts_with("/?"),
        "{}",
        location(&refused)
    );

    let checkout = get("/billing/checkout/pro-monthly").await.unwrap();
    assert_eq!(checkout.status(), 303);
    let hosted = location(&checkout);
    assert!(hosted.starts_with(&fake.checkout_url()), "{hosted}");
    let paid = browser.post(&hosted).form(&[("outcome", "succeed")]).send().await.unwrap();
    assert_eq!(paid.status(), 303);
    assert!(location(&paid).starts_with(&format!("{url}/billing/success")));
    fake.settled().await;
    let inside = get("/dashboard").await.unwrap();
    assert_eq!(inside.status(), 200);
    assert!(inside.text().await.unwrap().contains("ada@example.com"));

    let page = get("/billing/cancel?next=/").await.unwrap().text().await.unwrap();
    assert!(page.contains("Cancel Pro monthly?"), "{page}");
    let at = page.find(r#"name="token" value=""#).unwrap() + r#"name="token" value=""#.len();
    let cancelled = browser
        .post(format!("{url}/billing/cancel?next=/"))
        .form(&[("token", &page[at..at + 64])])
        .send()
        .await
        .unwrap();
    assert_eq!((cancelled.status().as_u16(), location(&cancelled)), (303, "/".into()));
    assert_eq!(fake.subscriptions()[0].status.as_str(), "cancelled");
    fake.settled().await;
    assert_eq!(get("/dashboard").await.unwrap().status(), 200, "paid to the period's end");
    let status: serde_json::Value = browser
        .get(format!("{url}/billing/status"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (status["status"].as_str(), status["access"].as_bool()),
        (Some("cancelled"), Some(true)),
        "{status}"
    );
    fake.stop().await;
}
