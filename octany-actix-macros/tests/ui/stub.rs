// A stand-in for the parts of octany_actix the derives use, so these tests
// compile without building the whole library.
pub mod octany_stub {
    pub mod model {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct ProductId(pub i64);
    }
    pub mod billable {
        pub trait BillingText {
            fn billing_text(&self) -> Option<String>;
        }
        impl BillingText for String {
            fn billing_text(&self) -> Option<String> {
                Some(self.clone())
            }
        }
        impl<T: BillingText> BillingText for Option<T> {
            fn billing_text(&self) -> Option<String> {
                self.as_ref().and_then(BillingText::billing_text)
            }
        }
    }
    pub trait Billable {
        fn billable_id(&self) -> String;
        fn billable_type(&self) -> &'static str {
            "user"
        }
        fn billing_email(&self) -> Option<String> {
            None
        }
        fn billing_name(&self) -> Option<String> {
            None
        }
    }
    pub trait Plan: Copy + 'static {
        fn product_id(&self) -> model::ProductId;
        fn slug(&self) -> &'static str;
        fn all() -> &'static [Self];
        fn features(&self) -> &'static [&'static str] {
            &[]
        }
        fn limits(&self) -> &'static [(&'static str, Option<u64>)] {
            &[]
        }
    }
    pub trait Feature {
        const NAME: &'static str;
    }
    pub trait Limit {
        const NAME: &'static str;
        const FREE: u64 = 0;
    }
}
