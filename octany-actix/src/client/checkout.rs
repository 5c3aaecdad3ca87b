use url::Url;

use super::OctanyClient;
use crate::client::{OctanyError, Result};
use crate::domain::config::Locale;
use crate::domain::model::ProductId;

/// The longest `referenceId` Octany keeps.
pub(crate) const MAX_REFERENCE_ID_LEN: usize = 250;

/// What to put on a hosted-checkout URL (API.md section 9).
///
/// ```
/// use octany_actix::client::{CheckoutRequest, OctanyClient};
/// use octany_actix::config::OctanyConfig;
/// use octany_actix::model::ProductId;
///
/// let client = OctanyClient::new(
///     OctanyConfig::new("8f14e45f-ceea-467f-a0e6-a6f4f7c3b2d1", "key").unwrap(),
/// ).unwrap();
/// let request = CheckoutRequest::new("user:42", "https://app.example/billing/success".parse().unwrap())
///     .email("ada@example.com");
/// let url = client.checkout_url(ProductId(1225), &request).unwrap();
/// assert!(url.as_str().starts_with(
///     "https://checkout.octany.com/checkout/8f14e45f-ceea-467f-a0e6-a6f4f7c3b2d1/product/1225?referenceId=user%3A42"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// The app's id for the buyer (at most 250 characters).
    pub reference_id: String,
    /// Where Octany sends the browser after payment: HTTPS, or http on
    /// localhost/127.0.0.1. May carry `{subscriptionId}` and the other
    /// placeholders.
    pub success_url: Url,
    /// Label shown in Octany's admin.
    pub reference_name: Option<String>,
    /// Pre-filled e-mail.
    pub email: Option<String>,
    /// Pre-filled first name.
    pub first_name: Option<String>,
    /// Pre-filled last name.
    pub last_name: Option<String>,
    /// Pre-filled company name.
    pub company_name: Option<String>,
    /// A price other than the product's, in minor units.
    pub amount: Option<i64>,
    /// The checkout page's language.
    pub locale: Option<Locale>,
    /// Allowed payment methods (e.g. `stripe`, `swish`).
    pub methods: Vec<String>,
    /// CRM tags.
    pub roles: Vec<String>,
}

impl CheckoutRequest {
    /// A request for the buyer `reference_id`, returning to `success_url`.
    pub fn new(reference_id: impl Into<String>, success_url: Url) -> Self {
        Self {
            reference_id: reference_id.into(),
            success_url,
            reference_name: None,
            email: None,
            first_name: None,
            last_name: None,
            company_name: None,
            amount: None,
            locale: None,
            methods: Vec::new(),
            roles: Vec::new(),
        }
    }

    /// Pre-fills the e-mail.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Pre-fills first and last name.
    pub fn name(mut self, first: impl Into<String>, last: impl Into<String>) -> Self {
        self.first_name = Some(first.into());
        self.last_name = Some(last.into());
        self
    }

    /// Sets the label shown in Octany's admin.
    pub fn reference_name(mut self, name: impl Into<String>) -> Self {
        self.reference_name = Some(name.into());
        self
    }

    /// Sets the checkout page's language.
    pub fn locale(mut self, locale: Locale) -> Self {
        self.locale = Some(locale);
        self
    }
}

/// Whether Octany accepts `url` as a success URL: HTTPS, or plain http on
/// this machine (the fake Octany's allowance for development).
pub(crate) fn is_acceptable_success_url(url: &Url) -> bool {
    url.scheme() == "https"
        || (url.scheme() == "http"
            && matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")))
}

impl OctanyClient {
    /// The hosted-checkout URL to redirect a buyer to. Nothing is sent; the
    /// redirect back proves nothing (access comes from webhooks and polls).
    pub fn checkout_url(&self, product: ProductId, request: &CheckoutRequest) -> Result<Url> {
        let invalid = |reason: String| OctanyError::InvalidRequest { reason };
        if request.reference_id.is_empty()
            || request.reference_id.chars().count() > MAX_REFERENCE_ID_LEN
        {
            return Err(invalid(format!(
                "referenceId must be 1 to {MAX_REFERENCE_ID_LEN} characters"
            )));
        }
        if !is_acceptable_success_url(&request.success_url) {
            return Err(invalid(format!(
                "successUrl `{}` must be https (http only for localhost): set the public base URL",
                request.success_url
            )));
        }
        let config = self.config();
        let mut url = config
            .checkout_url()
            .join(&format!(
                "checkout/{}/product/{}",
                config.account(),
                product
            ))
            .expect("account is a UUID and product an integer");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("referenceId", &request.reference_id);
            q.append_pair("successUrl", request.success_url.as_str());
            let optional = [
                ("referenceName", request.reference_name.as_deref()),
                ("email", request.email.as_deref()),
                ("firstName", request.first_name.as_deref()),
                ("lastName", request.last_name.as_deref()),
                ("companyName", request.company_name.as_deref()),
            ];
            for (name, value) in optional {
                if let Some(value) = value {
                    q.append_pair(name, value);
                }
            }
            if let Some(amount) = request.amount {
                q.append_pair("amount", &amount.to_string());
            }
            if let Some(locale) = request.locale.or(config.locale()) {
                q.append_pair("locale", locale.as_str());
            }
            if !request.methods.is_empty() {
                q.append_pair("methods", &request.methods.join(","));
            }
            if !request.roles.is_empty() {
                q.append_pair("roles", &request.roles.join(","));
            }
        }
        Ok(url)
    }
}
