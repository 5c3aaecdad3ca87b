#[derive(octany_actix_macros::Feature)]
struct Exports {
    on: bool,
}

fn main() {}
