//! The console's actions: each a form with a token and a reason, taken
//! through [`Operator`](crate::ops::Operator) (audited), then back to the
//! page it came from.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::{Mount, Staff, not_found, token_holds};
use crate::domain::model::BillableRef;
use crate::web::billing::NewComp;
use crate::web::error::BillingError;
use crate::web::octany::Octany;
use crate::web::ops::Operator;

/// A posted form's fields, in order (a field may come more than once).
type Fields = web::Form<Vec<(String, String)>>;

fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// 403 for a form whose token is missing, forged, of another member of
/// staff, another action or target, or older than a day.
fn forged() -> HttpResponse {
    HttpResponse::Forbidden()
        .content_type("text/plain; charset=utf-8")
        .body("This form has expired or was not made here: open the page again and resubmit.")
}

fn back_to(url: String, done: &str) -> HttpResponse {
    let done: String = url::form_urlencoded::byte_serialize(done.as_bytes()).collect();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("{url}?done={done}")))
        .finish()
}

/// `POST {console}/b/{billable}/{resync,cancel,swap,comps}`.
pub(super) async fn on_billable<S: Staff>(
    staff: S,
    octany: web::Data<Octany>,
    mount: web::Data<Mount>,
    path: web::Path<(String, String)>,
    fields: Fields,
) -> Result<HttpResponse, actix_web::Error> {
    let (named, action) = path.into_inner();
    let about = (action.as_str(), named.as_str());
    let (back, operator) = match admit(&staff, &octany, &mount, &fields, about, Some(&named))? {
        Ok(admitted) => admitted,
        Err(refused) => return Ok(refused),
    };
    // Admitted: it names a billable.
    let Some(billable) = BillableRef::parse(&named) else {
        return Ok(not_found());
    };
    let (name, reason) = (
        staff.staff_name(),
        field(&fields, "reason").unwrap_or_default(),
    );
    let plan = field(&fields, "plan");
    let done = match action.as_str() {
        "resync" => format!(
            "resynced: {} row(s) changed",
            operator.resync(&billable).await?
        ),
        "cancel" => {
            let row = operator.cancel(&billable, plan).await?;
            format!("subscription {} is {}", row.id, row.status)
        }
        "swap" => {
            let plan = plan.ok_or_else(|| BillingError::UnknownPlan(String::new()))?;
            let row = operator.swap(&billable, plan).await?;
            format!("subscription {} is on {plan}", row.id)
        }
        "comps" => {
            let mut comp = NewComp::new(reason, name.as_str());
            if let Some(slug) = plan {
                comp.plan = Some(
                    octany
                        .sold_at(slug)
                        .ok_or_else(|| BillingError::UnknownPlan(slug.to_owned()))?
                        .product,
                );
            }
            comp.features = fields
                .iter()
                .filter(|(k, v)| k == "feature" && !v.is_empty())
                .map(|(_, v)| v.clone())
                .collect();
            if let Some(days) = field(&fields, "days") {
                // A number of days that fits, or a clear 400 (never a panic).
                let now = octany.clock().now();
                let ends = days
                    .parse::<i64>()
                    .ok()
                    .and_then(chrono::Duration::try_days)
                    .and_then(|length| now.checked_add_signed(length));
                comp.ends_at = Some(ends.ok_or_else(|| {
                    BillingError::invalid(format!(
                        "`{days}` is not a number of days a comp can last"
                    ))
                })?);
            }
            format!(
                "comp {} granted",
                operator.grant_comp(&billable, comp).await?.id
            )
        }
        _ => return Ok(not_found()),
    };
    Ok(back_to(back, &done))
}

/// The billable's page when `billable` names one the staff may see, the
/// health page when it names none; `None` when it names one they may not.
fn page_of<S: Staff>(staff: &S, mount: &Mount, billable: Option<&str>) -> Option<String> {
    match billable.map(BillableRef::parse) {
        None => Some(mount.path("health")),
        Some(Some(b)) if staff.may_see(&b) => Some(mount.billable(b.as_str())),
        Some(_) => None,
    }
}

/// Admits the form of `action` on `target` (about `billable`, when it
/// names one): the page to go back to and the operator acting with the
/// form's reason; or the refusal: 404 for a billable the member of staff
/// may not see, 403 for a token not made for them, this action and
/// target, today or yesterday; 400 (`Err`) without a reason.
fn admit<'a, S: Staff>(
    staff: &S,
    octany: &'a Octany,
    mount: &Mount,
    fields: &Fields,
    (action, target): (&str, &str),
    billable: Option<&str>,
) -> Result<Result<(String, Operator<'a>), HttpResponse>, BillingError> {
    let Some(back) = page_of(staff, mount, billable) else {
        return Ok(Err(not_found()));
    };
    let name = staff.staff_name();
    let token = field(fields, "token").unwrap_or_default();
    if !token_holds(octany, &name, action, target, token) {
        return Ok(Err(forged()));
    }
    let operator = octany.operator(&name, field(fields, "reason").unwrap_or_default())?;
    Ok(Ok((back, operator)))
}

/// `POST {console}/comps/{id}/revoke`.
pub(super) async fn revoke_comp<S: Staff>(
    staff: S,
    octany: web::Data<Octany>,
    mount: web::Data<Mount>,
    id: web::Path<String>,
    fields: Fields,
) -> Result<HttpResponse, actix_web::Error> {
    let Some(comp) = octany
        .mirror()
        .comp(&id)
        .await
        .map_err(BillingError::from)?
    else {
        return Ok(not_found());
    };
    let about = Some(comp.billable_ref.as_str());
    let (back, operator) = match admit(
        &staff,
        &octany,
        &mount,
        &fields,
        ("revoke_comp", &id),
        about,
    )? {
        Ok(admitted) => admitted,
        Err(refused) => return Ok(refused),
    };
    let revoked = operator.revoke_comp(&id).await?;
    Ok(back_to(
        back,
        if revoked {
            "comp revoked"
        } else {
            "the comp was revoked before"
        },
    ))
}

/// `POST {console}/deliveries/{id}/replay`.
pub(super) async fn replay<S: Staff>(
    staff: S,
    octany: web::Data<Octany>,
    mount: web::Data<Mount>,
    id: web::Path<String>,
    fields: Fields,
) -> Result<HttpResponse, actix_web::Error> {
    let Some(delivery) = octany
        .mirror()
        .console()
        .delivery(&id)
        .await
        .map_err(BillingError::from)?
    else {
        return Ok(not_found());
    };
    let about = delivery.billable_ref.as_deref();
    let (back, operator) = match admit(&staff, &octany, &mount, &fields, ("replay", &id), about)? {
        Ok(admitted) => admitted,
        Err(refused) => return Ok(refused),
    };
    let received = operator.replay_delivery(&id).await?;
    Ok(back_to(
        back,
        &format!("delivery {id} replayed: {received:?}"),
    ))
}

/// `POST {console}/events/{id}/retry`.
pub(super) async fn retry<S: Staff>(
    staff: S,
    octany: web::Data<Octany>,
    mount: web::Data<Mount>,
    id: web::Path<String>,
    fields: Fields,
) -> Result<HttpResponse, actix_web::Error> {
    let billable = octany
        .mirror()
        .event_billable(&id)
        .await
        .map_err(BillingError::from)?;
    let about = billable.as_deref();
    let (back, operator) = match admit(&staff, &octany, &mount, &fields, ("retry", &id), about)? {
        Ok(admitted) => admitted,
        Err(refused) => return Ok(refused),
    };
    let all_ran = operator.retry_listeners(&id).await?;
    Ok(back_to(
        back,
        if all_ran {
            "every listener has run"
        } else {
            "a listener failed again (see the event)"
        },
    ))
}

/// `POST {console}/health/endpoint`: a signed `test.hook` posted to this
/// app's own webhook URL; back to the health page with what it answered.
pub(super) async fn check_endpoint<S: Staff>(
    staff: S,
    octany: web::Data<Octany>,
    mount: web::Data<Mount>,
    fields: Fields,
) -> Result<HttpResponse, actix_web::Error> {
    let (back, operator) = match admit(
        &staff,
        &octany,
        &mount,
        &fields,
        ("check_endpoint", "webhook"),
        None,
    )? {
        Ok(admitted) => admitted,
        Err(refused) => return Ok(refused),
    };
    let said = match operator.check_webhook_endpoint().await? {
        Ok(said) => said,
        Err(fix) => format!("not verified: {fix}"),
    };
    Ok(back_to(back, &said))
}
