//! The tables octany-actix keeps in the host's database, one module per
//! table (created by the `octany-actix-migrations` crate).
//!
//! Octany writes them (through webhooks and polls, via
//! [`Syncer`](crate::mirror::sync::Syncer)); the guard reads them.

pub mod checkout;
pub mod event;
pub(crate) mod lock;
pub mod order;
pub mod product;
pub mod subscription;
pub mod webhook_delivery;

/// Splits a `referenceId` into a billable reference when it names one:
/// `type:id`, both parts non-empty (e.g. `user:42`).
pub(crate) fn billable_ref(reference_id: Option<&str>) -> Option<String> {
    let reference = reference_id?.trim();
    let (kind, id) = reference.split_once(':')?;
    (!kind.is_empty() && !id.is_empty()).then(|| reference.to_owned())
}

#[cfg(test)]
mod tests {
    use super::billable_ref;

    #[test]
    fn a_billable_reference_is_type_colon_id() {
        assert_eq!(billable_ref(Some("user:42")), Some("user:42".to_string()));
        assert_eq!(billable_ref(Some("newsletter")), None);
        assert_eq!(billable_ref(Some(":42")), None);
        assert_eq!(billable_ref(None), None);
    }
}
