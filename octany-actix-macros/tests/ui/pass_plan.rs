include!("stub.rs");
use octany_stub::Plan;

#[derive(octany_actix_macros::Plan, Clone, Copy, Debug, PartialEq)]
#[plan(crate = "crate::octany_stub")]
enum Plans {
    #[plan(product = 1225)]
    ProMonthly,
    #[plan(product = 1226, slug = "yearly")]
    ProYearly,
}

fn main() {
    assert_eq!(Plans::ProMonthly.product_id(), octany_stub::model::ProductId(1225));
    assert_eq!(Plans::ProMonthly.slug(), "pro-monthly");
    assert_eq!(Plans::ProYearly.slug(), "yearly");
    assert_eq!(Plans::all(), &[Plans::ProMonthly, Plans::ProYearly]);
}
