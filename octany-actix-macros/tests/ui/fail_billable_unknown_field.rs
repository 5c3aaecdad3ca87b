#[derive(octany_actix_macros::Billable)]
#[billable(id = "idd")]
struct User {
    id: i32,
}

fn main() {}
