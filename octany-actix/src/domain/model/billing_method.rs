use serde::{Deserialize, Serialize};

use super::lenient::{self, string_enum};

string_enum! {
    /// How a customer pays (`billing_method.type`).
    pub enum BillingMethodKind {
        /// A card, through Stripe.
        Stripe = "stripe",
        /// Swish.
        Swish = "swish",
        /// An invoice through Fortnox.
        Fortnox = "fortnox",
        /// An invoice through Billecta.
        Billecta = "billecta",
        /// Trustly.
        Trustly = "trustly",
        /// Autogiro (direct debit).
        Autogiro = "autogiro",
    }
}

impl Default for BillingMethodKind {
    fn default() -> Self {
        Self::Unknown(String::new())
    }
}

/// The customer's means of payment and contact details.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BillingMethod {
    /// The kind of method.
    #[serde(rename = "type", default)]
    pub kind: BillingMethodKind,
    /// A display name.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    /// The billing e-mail.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub email: Option<String>,
    /// The person paying, if known.
    #[serde(default, deserialize_with = "lenient::opt_object")]
    pub person: Option<Person>,
    /// The billing address, if known.
    #[serde(default, deserialize_with = "lenient::opt_object")]
    pub address: Option<Address>,
    /// The company paying, if any.
    #[serde(default, deserialize_with = "lenient::opt_object")]
    pub company: Option<Company>,
}

/// The person behind a billing method.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// First name.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub last_name: Option<String>,
    /// E-mail.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub email: Option<String>,
    /// Phone; Octany has sent `false` for "none".
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub phone: Option<String>,
    /// Preferred language.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub locale: Option<String>,
    /// Swedish personal identity number (personnummer).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub personal_identity_number: Option<String>,
}

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Address {
    /// First line.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub line1: Option<String>,
    /// Second line.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub line2: Option<String>,
    /// Postal code.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub zip: Option<String>,
    /// City.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub city: Option<String>,
    /// Country.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub country: Option<String>,
}

/// A company behind a billing method.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Company {
    /// Company name.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub name: Option<String>,
    /// VAT number.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub vat_number: Option<String>,
}
