//! A receipt of a paid order, as a Swedish business customer needs it: the
//! seller (from configuration) and the buyer (from the order's billing
//! method) with their VAT numbers, each line with its quantity, price, VAT
//! rate and VAT, the VAT per rate, and the totals with and without VAT.
//!
//! Built from the order alone (no clock, no randomness), so a receipt
//! renders to the same bytes every time: it can be stored and compared.

use askama::Template;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::config::Locale;
use crate::domain::model::Order;

mod pdf;

/// `minor` units of `currency` as pages and mails show an amount:
/// `123,75 SEK`.
pub(crate) fn amount(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!(
        "{sign}{},{:02} {}",
        minor.abs() / 100,
        minor.abs() % 100,
        currency.to_uppercase()
    )
}

/// A VAT share of `base` as a whole percent in hundredths (`2500` = 25 %):
/// Swedish rates are whole (25, 12, 6, 0).
fn whole_percent(vat: i64, base: i64) -> i64 {
    if base == 0 {
        return 0;
    }
    ((vat * 100 + base / 2) / base) * 100
}

/// The seller's details printed on every receipt (Swedish law asks for the
/// name, the organisation number, the VAT number and the address).
///
/// ```
/// use octany_actix::receipt::Seller;
/// let seller = Seller {
///     name: "Exempel AB".into(),
///     organisation_number: "556677-8899".into(),
///     vat_number: "SE556677889901".into(),
///     address: vec!["Storgatan 1".into(), "111 22 Stockholm".into()],
///     email: Some("billing@example.se".into()),
/// };
/// # let _ = seller;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Seller {
    /// The company's registered name.
    pub name: String,
    /// Its organisation number (`556677-8899`).
    pub organisation_number: String,
    /// Its VAT number (`SE556677889901`).
    pub vat_number: String,
    /// Its address, one line each.
    pub address: Vec<String>,
    /// Where to write about billing.
    pub email: Option<String>,
}

/// A receipt (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// The order's id (the receipt's number).
    pub order_id: String,
    /// When the order was made, as Octany or the mirror has it.
    pub date: DateTime<Utc>,
    /// The seller.
    pub seller: Seller,
    /// The buyer: a company's or a person's name, then address lines.
    pub buyer: Vec<String>,
    /// The buyer's VAT number, for a company that gave one.
    pub buyer_vat_number: Option<String>,
    /// The lines.
    pub lines: Vec<ReceiptLine>,
    /// The VAT per rate: (rate in hundredths of a percent, base, VAT).
    pub vat_by_rate: Vec<(i64, i64, i64)>,
    /// The total without VAT, minor units.
    pub total: i64,
    /// The VAT, minor units.
    pub vat: i64,
    /// The total with VAT, minor units.
    pub total_with_vat: i64,
    /// The currency, upper-case (`SEK`).
    pub currency: String,
}

/// One line of a [`Receipt`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptLine {
    /// What it is for.
    pub description: String,
    /// How many.
    pub quantity: i64,
    /// The price of one, without VAT, minor units.
    pub unit_price: i64,
    /// The VAT rate in hundredths of a percent (`2500` = 25 %).
    pub vat_rate: i64,
    /// The line's VAT, minor units.
    pub vat: i64,
    /// The line's total without VAT, minor units.
    pub total: i64,
}

impl Receipt {
    /// The receipt of `order`, made at `date`, sold by `seller`.
    pub fn of(order: &Order, date: DateTime<Utc>, seller: &Seller) -> Self {
        let mut lines: Vec<ReceiptLine> = order
            .items
            .iter()
            .map(|item| {
                let quantity = item.quantity.max(1);
                let vat_rate = match &item.product {
                    Some(product) => product.vat_rate,
                    None => whole_percent(item.vat, item.price),
                };
                let description = item
                    .description
                    .clone()
                    .or_else(|| item.product.as_ref().map(|p| p.name.clone()))
                    .unwrap_or_else(|| format!("Order {}", order.id));
                ReceiptLine {
                    description,
                    quantity,
                    unit_price: item.price,
                    vat_rate,
                    vat: item.vat * quantity,
                    total: item.price * quantity,
                }
            })
            .collect();
        if lines.is_empty() {
            let vat = order.total_with_vat - order.total;
            lines.push(ReceiptLine {
                description: format!("Order {}", order.id),
                quantity: 1,
                unit_price: order.total,
                vat_rate: whole_percent(vat, order.total),
                vat,
                total: order.total,
            });
        }
        let mut vat_by_rate: Vec<(i64, i64, i64)> = Vec::new();
        for line in &lines {
            match vat_by_rate
                .iter_mut()
                .find(|(rate, ..)| *rate == line.vat_rate)
            {
                Some((_, base, vat)) => {
                    *base += line.total;
                    *vat += line.vat;
                }
                None => vat_by_rate.push((line.vat_rate, line.total, line.vat)),
            }
        }
        vat_by_rate.sort_by_key(|(rate, ..)| std::cmp::Reverse(*rate));
        let total: i64 = lines.iter().map(|l| l.total).sum();
        let vat: i64 = lines.iter().map(|l| l.vat).sum();
        let method = order.billing_method.as_ref();
        let company = method.and_then(|m| m.company.as_ref());
        let person = method.and_then(|m| m.person.as_ref());
        let mut buyer = Vec::new();
        if let Some(name) = company.and_then(|c| c.name.clone()) {
            buyer.push(name);
        }
        let person_name = person
            .map(|p| {
                [p.first_name.as_deref(), p.last_name.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|n| !n.is_empty())
            .or_else(|| method.and_then(|m| m.name.clone()));
        if let Some(name) = person_name {
            buyer.push(name);
        }
        if let Some(address) = method.and_then(|m| m.address.as_ref()) {
            let city = [address.zip.as_deref(), address.city.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            buyer.extend(
                [address.line1.clone(), address.line2.clone(), Some(city)]
                    .into_iter()
                    .flatten()
                    .filter(|l| !l.trim().is_empty()),
            );
        }
        if let Some(email) = method.and_then(|m| m.email.clone()) {
            buyer.push(email);
        }
        Receipt {
            order_id: order.id.to_string(),
            date,
            seller: seller.clone(),
            buyer,
            buyer_vat_number: company.and_then(|c| c.vat_number.clone()),
            lines,
            vat_by_rate,
            total,
            vat,
            total_with_vat: total + vat,
            currency: order.currency.to_uppercase(),
        }
    }

    /// `minor` units of the receipt's currency, written for `locale`:
    /// `1 234,50 kr` in Swedish, `SEK 1,234.50` in English.
    pub fn money(&self, minor: i64, locale: Locale) -> String {
        let sign = if minor < 0 { "-" } else { "" };
        let (whole, cents) = (minor.abs() / 100, minor.abs() % 100);
        let digits = whole.to_string();
        let separator = match locale {
            Locale::Sv => ' ',
            Locale::En => ',',
        };
        let mut grouped = String::new();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(separator);
            }
            grouped.push(digit);
        }
        match (locale, self.currency.as_str()) {
            (Locale::Sv, "SEK") => format!("{sign}{grouped},{cents:02} kr"),
            (Locale::Sv, currency) => format!("{sign}{grouped},{cents:02} {currency}"),
            (Locale::En, currency) => format!("{sign}{currency} {grouped}.{cents:02}"),
        }
    }

    /// A VAT rate (hundredths of a percent) as `25 %` / `25%`.
    pub fn rate(rate: i64, locale: Locale) -> String {
        let whole = rate / 100;
        let text = if rate % 100 == 0 {
            whole.to_string()
        } else {
            match locale {
                Locale::Sv => format!("{whole},{:02}", rate % 100),
                Locale::En => format!("{whole}.{:02}", rate % 100),
            }
        };
        match locale {
            Locale::Sv => format!("{text} %"),
            Locale::En => format!("{text}%"),
        }
    }

    /// The date, `2026-12-04` (both languages).
    pub fn day(&self) -> String {
        self.date.format("%Y-%m-%d").to_string()
    }

    /// The receipt as an HTML page in `locale`.
    pub fn to_html(&self, locale: Locale) -> String {
        let money = |minor| self.money(minor, locale);
        let page = ReceiptPage {
            lang: locale.as_str(),
            words: Words::of(locale),
            r: self,
            lines: self
                .lines
                .iter()
                .map(|l| ShownLine {
                    description: &l.description,
                    quantity: l.quantity,
                    unit_price: money(l.unit_price),
                    rate: Self::rate(l.vat_rate, locale),
                    vat: money(l.vat),
                    total: money(l.total),
                })
                .collect(),
            rates: self
                .vat_by_rate
                .iter()
                .map(|(rate, base, vat)| (Self::rate(*rate, locale), money(*base), money(*vat)))
                .collect(),
            total: money(self.total),
            total_with_vat: money(self.total_with_vat),
        };
        page.render()
            .unwrap_or_else(|error| format!("<p>the receipt could not be shown: {error}</p>"))
    }

    /// The receipt as a one-page A4 PDF in `locale`: the same receipt gives
    /// the same bytes.
    pub fn to_pdf(&self, locale: Locale) -> Vec<u8> {
        pdf::render(self, locale)
    }
}

/// A receipt's words in one language.
#[derive(Debug, Clone, Copy)]
struct Words {
    title: &'static str,
    date: &'static str,
    seller: &'static str,
    buyer: &'static str,
    organisation_number: &'static str,
    vat_number: &'static str,
    item: &'static str,
    quantity: &'static str,
    unit_price: &'static str,
    vat_rate: &'static str,
    vat: &'static str,
    amount: &'static str,
    total_excl: &'static str,
    total_incl: &'static str,
    of: &'static str,
    paid: &'static str,
}

impl Words {
    fn of(locale: Locale) -> Self {
        match locale {
            Locale::Sv => Self {
                title: "Kvitto",
                date: "Datum",
                seller: "Säljare",
                buyer: "Köpare",
                organisation_number: "Organisationsnummer",
                vat_number: "Momsregistreringsnummer",
                item: "Artikel",
                quantity: "Antal",
                unit_price: "À-pris",
                vat_rate: "Moms %",
                vat: "Moms",
                amount: "Belopp",
                total_excl: "Summa exkl. moms",
                total_incl: "Att betala inkl. moms",
                of: "på",
                paid: "Betald. Tack för ditt köp!",
            },
            Locale::En => Self {
                title: "Receipt",
                date: "Date",
                seller: "Seller",
                buyer: "Buyer",
                organisation_number: "Organisation number",
                vat_number: "VAT number",
                item: "Item",
                quantity: "Qty",
                unit_price: "Unit price",
                vat_rate: "VAT rate",
                vat: "VAT",
                amount: "Amount",
                total_excl: "Total excl. VAT",
                total_incl: "Total incl. VAT",
                of: "on",
                paid: "Paid. Thank you for your purchase!",
            },
        }
    }
}

/// A line as the page shows it.
struct ShownLine<'a> {
    description: &'a str,
    quantity: i64,
    unit_price: String,
    rate: String,
    vat: String,
    total: String,
}

#[derive(Template)]
#[template(path = "octany/receipt.html")]
struct ReceiptPage<'a> {
    lang: &'static str,
    words: Words,
    r: &'a Receipt,
    lines: Vec<ShownLine<'a>>,
    rates: Vec<(String, String, String)>,
    total: String,
    total_with_vat: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{BillingMethod, Company, OrderId, OrderItem, Product, ProductId};

    fn seller() -> Seller {
        Seller {
            name: "Exempel AB".into(),
            organisation_number: "556677-8899".into(),
            vat_number: "SE556677889901".into(),
            address: vec!["Storgatan 1".into(), "111 22 Stockholm".into()],
            email: None,
        }
    }

    fn item(description: &str, quantity: i64, price: i64, vat_rate: i64) -> OrderItem {
        OrderItem {
            description: Some(description.into()),
            quantity,
            price,
            vat: (price * vat_rate + 5000) / 10000,
            product: Some(Product {
                id: ProductId(1),
                name: description.into(),
                kind: None,
                interval: None,
                price,
                currency: "sek".into(),
                vat_rate,
            }),
        }
    }

    #[test]
    fn the_vat_is_summed_per_rate_and_the_totals_add_up() {
        let order: Order = serde_json::from_value(serde_json::json!({
            "id": 77, "currency": "sek", "state": "paid", "total": 0, "total_with_vat": 0,
        }))
        .unwrap();
        let order = Order {
            items: vec![
                item("Pro", 1, 9900, 2500),
                item("Book", 2, 20000, 600),
                item("Seats", 3, 1000, 2500),
            ],
            billing_method: Some(BillingMethod {
                company: Some(Company {
                    name: Some("Kund AB".into()),
                    vat_number: Some("SE559988776601".into()),
                }),
                ..BillingMethod::default()
            }),
            id: OrderId::new("77"),
            ..order
        };
        let receipt = Receipt::of(&order, "2026-12-04T10:00:00Z".parse().unwrap(), &seller());
        assert_eq!(
            receipt.vat_by_rate,
            vec![(2500, 12900, 2475 + 750), (600, 40000, 2400)]
        );
        assert_eq!(receipt.total, 52900);
        assert_eq!(receipt.vat, 5625);
        assert_eq!(receipt.total_with_vat, 58525);
        assert_eq!(receipt.buyer, vec!["Kund AB".to_owned()]);
        assert_eq!(receipt.buyer_vat_number.as_deref(), Some("SE559988776601"));
        assert_eq!(receipt.money(123_456, Locale::Sv), "1 234,56 kr");
        assert_eq!(receipt.money(123_456, Locale::En), "SEK 1,234.56");
        assert_eq!(Receipt::rate(2500, Locale::Sv), "25 %");
        assert_eq!(Receipt::rate(1250, Locale::En), "12.50%");
        assert_eq!(receipt.day(), "2026-12-04");
    }
}
