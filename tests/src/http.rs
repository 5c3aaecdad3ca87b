//! Calling the test app as a browser or an API client would.

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test as actix_test;
use octany_fake::{CheckoutParams, FakeOctany};
use serde_json::Value;

/// What the app answered.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The `Location` header.
    pub location: Option<String>,
    /// The body, as JSON when it is JSON, else as text.
    pub body: Value,
}

/// Sends `method path` as user `user` (none: logged out), as a browser
/// (`Accept: text/html`) or an API client.
pub async fn call<S, B>(
    app: &S,
    method: &str,
    path: &str,
    user: Option<i64>,
    browser: bool,
) -> Answer
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut request = actix_test::TestRequest::default()
        .method(method.parse().unwrap())
        .uri(path);
    if let Some(user) = user {
        request = request.insert_header(("X-User", user.to_string()));
    }
    request = request.insert_header((
        "Accept",
        if browser {
            "text/html"
        } else {
            "application/json"
        },
    ));
    answer(actix_test::call_service(app, request.to_request()).await).await
}

/// Reads a response into an [`Answer`].
async fn answer<B: MessageBody>(response: ServiceResponse<B>) -> Answer {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = actix_test::read_body(response).await;
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Answer {
        status,
        location,
        body,
    }
}

/// Posts a form as user `user`, as a browser would.
pub async fn post_form<S, B>(app: &S, path: &str, user: i64, form: &[(&str, &str)]) -> Answer
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let request = actix_test::TestRequest::post()
        .uri(path)
        .insert_header(("X-User", user.to_string()))
        .insert_header(("Accept", "text/html"))
        .set_form(
            form.iter()
                .copied()
                .collect::<std::collections::HashMap<_, _>>(),
        )
        .to_request();
    answer(actix_test::call_service(app, request).await).await
}

/// The value of the hidden input `name` in an HTML page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker)? + marker.len();
    Some(html[start..].split('"').next()?.to_owned())
}

/// A fake Octany with the sample catalog.
pub async fn fake() -> FakeOctany {
    FakeOctany::builder()
        .sample_catalog()
        .start()
        .await
        .unwrap()
}

/// A fake Octany, the app's billing on it (cache TTL `$ttl`), and the app
/// as a test service.
#[macro_export]
macro_rules! started {
    ($db:expr, $ttl:expr) => {{
        let fake = $crate::http::fake().await;
        let octany = $crate::app::octany(&$db, &fake, $ttl);
        let app = $crate::serving!(octany);
        (fake, octany, app)
    }};
}

/// The app as a test service, its billing being `$octany` (an `Octany`
/// a test has configured itself).
#[macro_export]
macro_rules! serving {
    ($octany:expr) => {{
        let octany: &octany_actix::Octany = &$octany;
        actix_web::test::init_service(
            actix_web::App::new()
                .app_data(actix_web::web::Data::new(octany.clone()))
                .configure($crate::app::configure(octany)),
        )
        .await
    }};
}

/// Checkout parameters for user `user`.
pub fn buyer(user: i64) -> CheckoutParams {
    CheckoutParams {
        reference_id: Some(format!("user:{user}")),
        ..Default::default()
    }
}

/// User `user` has bought product `product` (paid by card at the fake) and
/// the app has synced them, with no webhook: the mirror holds the
/// subscription, which this returns as Octany has it.
pub async fn subscribed(
    fake: &FakeOctany,
    octany: &octany_actix::Octany,
    product: i64,
    user: i64,
) -> octany_actix::model::Subscription {
    let subscription = fake
        .checkout(product, &buyer(user), octany_fake::CheckoutOutcome::Succeed)
        .expect("the fake sells it")
        .subscription
        .expect("a subscription was bought");
    octany
        .syncer()
        .sync_billable_subscriptions(&octany_actix::model::BillableRef::new(
            "user",
            &user.to_string(),
        ))
        .await
        .expect("the app syncs the user");
    subscription
}

/// Pays at the fake's checkout page as a person would, and follows the
/// redirect back into the app; returns the app's answer to the success page.
pub async fn pay<S, B>(app: &S, fake_checkout_url: &str, outcome: &str, user: i64) -> Answer
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    octany_actix::install_crypto_provider();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let paid = client
        .post(fake_checkout_url)
        .form(&[("outcome", outcome)])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303, "the fake accepted the payment");
    let back = url::Url::parse(paid.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        back.origin().ascii_serialization(),
        "http://localhost:8080",
        "built from the configured base URL"
    );
    let path = format!("{}?{}", back.path(), back.query().unwrap_or_default());
    call(app, "GET", &path, Some(user), true).await
}
