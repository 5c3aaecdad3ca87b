#[derive(octany_actix_macros::Plan, Clone, Copy)]
enum Plans {
    #[plan(product = 1225)]
    Pro,
    #[plan(product = 1225)]
    Basic,
}

fn main() {}
