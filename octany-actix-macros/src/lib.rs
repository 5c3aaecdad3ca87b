//! Derive macros for `octany-actix`: [`Billable`](derive@Billable) and
//! [`Plan`](derive@Plan). Use them through `octany_actix`, which re-exports
//! both.

use heck::{ToKebabCase, ToSnakeCase};
use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::quote;
use syn::{Data, DeriveInput, Error, Fields, Ident, LitInt, LitStr, Path, parse_macro_input};

/// Implements `octany_actix::Billable` for a struct (e.g. a sea-orm model).
///
/// `#[billable(type = "user", id = "id", email = "email", name = "name")]`:
/// `id` names the field holding the stable id (default `id`); `email` and
/// `name` name `String` or `Option<String>` fields to pre-fill checkout;
/// `type` is the billable's kind (default `user`); `crate` overrides the
/// path of `octany_actix`.
#[proc_macro_derive(Billable, attributes(billable))]
pub fn derive_billable(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    billable(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// Implements `octany_actix::Plan` for an enum of unit variants, each
/// `#[plan(product = 1225)]` (and optionally `slug = "pro"`, and
/// `pay_what_you_want` for a plan sold at any price; by default the
/// variant's name in kebab case), and what it carries:
/// `features(Exports, Api)` names `Feature` types and
/// `limits(Seats = 5, Projects = unlimited)` `Limit` types. On the enum, `#[plan(group = "add-ons")]`
/// puts its plans in a group of their own (default `"default"`). Derive
/// `Clone` and `Copy` beside it.
#[proc_macro_derive(Plan, attributes(plan))]
pub fn derive_plan(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    plan(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// Implements `octany_actix::Feature` for a unit struct: its name is the
/// struct's in snake case (`Exports` → `"exports"`), or
/// `#[octany(name = "...")]`.
#[proc_macro_derive(Feature, attributes(octany))]
pub fn derive_feature(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    named(&input, "octany", "Feature", false)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// Implements `octany_actix::Limit` for a unit struct: its name is the
/// struct's in snake case (`Seats` → `"seats"`), or
/// `#[octany(name = "...")]`; `#[octany(free = 1)]` is what a billable
/// without a plan may have (default 0).
#[proc_macro_derive(Limit, attributes(octany))]
pub fn derive_limit(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    named(&input, "octany", "Limit", true)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// A `Feature` or `Limit` impl: `attr` is the attribute's name, `trait_name`
/// the trait's; `free`: whether `free = n` is accepted.
fn named(
    input: &DeriveInput,
    attr: &str,
    trait_name: &str,
    free: bool,
) -> syn::Result<proc_macro2::TokenStream> {
    let Data::Struct(data) = &input.data else {
        return Err(Error::new_spanned(
            &input.ident,
            format!("#[derive({trait_name})] works on a unit struct (`struct Exports;`)"),
        ));
    };
    if !matches!(data.fields, Fields::Unit) {
        return Err(Error::new_spanned(
            &input.ident,
            format!("#[derive({trait_name})] works on a unit struct (`struct Exports;`)"),
        ));
    }
    let mut krate = default_crate();
    let mut name = input.ident.to_string().to_snake_case();
    let mut free_value: Option<LitInt> = None;
    for a in input.attrs.iter().filter(|a| a.path().is_ident(attr)) {
        a.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let value: LitStr = meta.value()?.parse()?;
                let text = value.value();
                if text.is_empty()
                    || !text
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    return Err(Error::new_spanned(
                        &value,
                        "a name is letters, digits, `_` and `-`",
                    ));
                }
                name = text;
                Ok(())
            } else if meta.path.is_ident("crate") {
                let value: LitStr = meta.value()?.parse()?;
                krate = value.parse()?;
                Ok(())
            } else if free && meta.path.is_ident("free") {
                let value: LitInt = meta.value()?.parse()?;
                value.base10_parse::<u64>()?;
                free_value = Some(value);
                Ok(())
            } else {
                Err(meta.error(if free {
                    "expected `name = \"...\"`, `free = <count>` or `crate = \"...\"`"
                } else {
                    "expected `name = \"...\"` or `crate = \"...\"`"
                }))
            }
        })?;
    }
    let ident = &input.ident;
    let trait_ident = Ident::new(trait_name, Span::call_site());
    let free_const = free_value.map(|v| quote! { const FREE: u64 = #v; });
    Ok(quote! {
        impl #krate::#trait_ident for #ident {
            const NAME: &'static str = #name;
            #free_const
        }
    })
}

fn default_crate() -> Path {
    syn::parse_quote!(::octany_actix)
}

fn billable(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let Data::Struct(data) = &input.data else {
        return Err(Error::new_spanned(
            &input.ident,
            "#[derive(Billable)] works on structs with named fields",
        ));
    };
    let Fields::Named(fields) = &data.fields else {
        return Err(Error::new_spanned(
            &input.ident,
            "#[derive(Billable)] needs named fields",
        ));
    };
    let field_names: Vec<String> = fields
        .named
        .iter()
        .filter_map(|f| f.ident.as_ref().map(Ident::to_string))
        .collect();
    let mut kind = LitStr::new("user", Span::call_site());
    let mut id: Option<LitStr> = None;
    let (mut email, mut name): (Option<LitStr>, Option<LitStr>) = (None, None);
    let mut krate = default_crate();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("billable")) {
        attr.parse_nested_meta(|meta| {
            let key = meta.path.get_ident().map(Ident::to_string).unwrap_or_default();
            match key.as_str() {
                "type" => {
                    let value: LitStr = meta.value()?.parse()?;
                    let text = value.value();
                    if text.is_empty() || text.contains(':') {
                        return Err(Error::new_spanned(&value, "`type` must be a non-empty name without `:` (e.g. \"user\" or \"team\")"));
                    }
                    kind = value;
                }
                "id" => id = Some(meta.value()?.parse()?),
                "email" => email = Some(meta.value()?.parse()?),
                "name" => name = Some(meta.value()?.parse()?),
                "crate" => {
                    let value: LitStr = meta.value()?.parse()?;
                    krate = value.parse()?;
                }
                _ => {
                    return Err(meta.error(format!(
                        "unknown billable attribute `{key}`: expected `type`, `id`, `email`, `name` or `crate`"
                    )));
                }
            }
            Ok(())
        })?;
    }
    let field = |lit: &LitStr, role: &str| -> syn::Result<Ident> {
        let value = lit.value();
        if field_names.contains(&value) {
            Ok(Ident::new(&value, lit.span()))
        } else {
            Err(Error::new_spanned(
                lit,
                format!(
                    "`{}` has no field `{value}` to use as the billable's {role}",
                    input.ident
                ),
            ))
        }
    };
    let id = match &id {
        Some(lit) => field(lit, "id")?,
        None if field_names.iter().any(|f| f == "id") => Ident::new("id", Span::call_site()),
        None => {
            return Err(Error::new_spanned(
                &input.ident,
                "no field `id`: name the field holding the billable's id with #[billable(id = \"...\")]",
            ));
        }
    };
    let text_method =
        |method: &str, lit: &Option<LitStr>, role: &str| -> syn::Result<proc_macro2::TokenStream> {
            let method = Ident::new(method, Span::call_site());
            Ok(match lit {
                Some(lit) => {
                    let f = field(lit, role)?;
                    quote! {
                        fn #method(&self) -> ::core::option::Option<::std::string::String> {
                            #krate::billable::BillingText::billing_text(&self.#f)
                        }
                    }
                }
                None => quote! {},
            })
        };
    let email = text_method("billing_email", &email, "e-mail")?;
    let name = text_method("billing_name", &name, "name")?;
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics #krate::Billable for #ident #ty_generics #where_clause {
            fn billable_id(&self) -> ::std::string::String {
                ::std::string::ToString::to_string(&self.#id)
            }
            fn billable_type(&self) -> &'static str {
                #kind
            }
            #email
            #name
        }
    })
}

fn plan(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let Data::Enum(data) = &input.data else {
        return Err(Error::new_spanned(
            &input.ident,
            "#[derive(Plan)] works on enums whose variants are plans",
        ));
    };
    if data.variants.is_empty() {
        return Err(Error::new_spanned(
            &input.ident,
            "a plan enum needs at least one variant",
        ));
    }
    let mut krate = default_crate();
    let mut group: Option<LitStr> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("plan")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let value: LitStr = meta.value()?.parse()?;
                krate = value.parse()?;
                Ok(())
            } else if meta.path.is_ident("group") {
                let value: LitStr = meta.value()?.parse()?;
                if value.value().is_empty() {
                    return Err(meta.error("a plan group needs a name"));
                }
                group = Some(value);
                Ok(())
            } else {
                Err(meta.error(
                    "on the enum, #[plan] takes only `group` and `crate`; put `product` on each variant",
                ))
            }
        })?;
    }
    let group = group.map(|g| quote! { const GROUP: &'static str = #g; });
    let mut variants = Vec::new();
    let mut products: Vec<(i64, Ident)> = Vec::new();
    let mut pay_what_you_want: Vec<Ident> = Vec::new();
    let mut slugs: Vec<String> = Vec::new();
    let mut grants: Vec<Grants> = Vec::new();
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            return Err(Error::new_spanned(
                &variant.ident,
                "a plan variant carries no data",
            ));
        }
        let mut product: Option<LitInt> = None;
        let mut slug: Option<LitStr> = None;
        let mut any_price = false;
        let mut features: Vec<Path> = Vec::new();
        let mut limits: Vec<(Path, Option<LitInt>)> = Vec::new();
        for attr in variant.attrs.iter().filter(|a| a.path().is_ident("plan")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("product") {
                    product = Some(meta.value()?.parse()?);
                    Ok(())
                } else if meta.path.is_ident("slug") {
                    slug = Some(meta.value()?.parse()?);
                    Ok(())
                } else if meta.path.is_ident("pay_what_you_want") {
                    any_price = true;
                    Ok(())
                } else if meta.path.is_ident("features") {
                    meta.parse_nested_meta(|feature| {
                        features.push(feature.path.clone());
                        Ok(())
                    })
                } else if meta.path.is_ident("limits") {
                    meta.parse_nested_meta(|limit| {
                        let path = limit.path.clone();
                        let value = limit.value()?;
                        let allowed = if value.peek(Ident) {
                            let word: Ident = value.parse()?;
                            if word != "unlimited" {
                                return Err(Error::new_spanned(word, "a limit is a count or `unlimited`"));
                            }
                            None
                        } else {
                            let count: LitInt = value.parse()?;
                            count.base10_parse::<u64>()?;
                            Some(count)
                        };
                        limits.push((path, allowed));
                        Ok(())
                    })
                } else {
                    Err(meta.error("unknown plan attribute: expected `product = <Octany product id>`, `slug = \"...\"`, `pay_what_you_want`, `features(...)` or `limits(...)`"))
                }
            })?;
        }
        if any_price {
            pay_what_you_want.push(variant.ident.clone());
        }
        let Some(product) = product else {
            return Err(Error::new_spanned(
                &variant.ident,
                format!(
                    "`{}` needs #[plan(product = <Octany product id>)]",
                    variant.ident
                ),
            ));
        };
        let id: i64 = product.base10_parse()?;
        if id <= 0 {
            return Err(Error::new_spanned(
                &product,
                "an Octany product id is a positive integer",
            ));
        }
        if let Some((_, other)) = products.iter().find(|(p, _)| *p == id) {
            return Err(Error::new_spanned(
                &product,
                format!("product {id} is already the plan `{other}`"),
            ));
        }
        let slug = slug
            .map(|s| s.value())
            .unwrap_or_else(|| variant.ident.to_string().to_kebab_case());
        if slugs.contains(&slug) {
            return Err(Error::new_spanned(
                &variant.ident,
                format!("the slug `{slug}` is used twice"),
            ));
        }
        products.push((id, variant.ident.clone()));
        slugs.push(slug.clone());
        variants.push((variant.ident.clone(), id, slug));
        grants.push((variant.ident.clone(), features, limits));
    }
    let ident = &input.ident;
    let names: Vec<&Ident> = variants.iter().map(|(v, _, _)| v).collect();
    let ids: Vec<i64> = variants.iter().map(|(_, id, _)| *id).collect();
    let slug_lits: Vec<&String> = variants.iter().map(|(_, _, s)| s).collect();
    let any_price = (!pay_what_you_want.is_empty()).then(|| {
        quote! {
            fn pay_what_you_want(&self) -> bool {
                matches!(self, #( Self::#pay_what_you_want )|*)
            }
        }
    });
    let carries = grants_methods(&krate, &grants);
    Ok(quote! {
        impl #krate::Plan for #ident {
            #group
            #carries
            fn product_id(&self) -> #krate::model::ProductId {
                match self {
                    #( Self::#names => #krate::model::ProductId(#ids), )*
                }
            }
            fn slug(&self) -> &'static str {
                match self {
                    #( Self::#names => #slug_lits, )*
                }
            }
            fn all() -> &'static [Self] {
                &[ #( Self::#names ),* ]
            }
            #any_price
        }
    })
}

/// A variant's features and limits (`None`: unlimited).
type Grants = (Ident, Vec<Path>, Vec<(Path, Option<LitInt>)>);

/// `Plan::features` and `Plan::limits` for the variants that name any: each
/// name read from the host's type (`<Exports as Feature>::NAME`), so a
/// misspelt feature or limit does not compile.
fn grants_methods(krate: &Path, grants: &[Grants]) -> proc_macro2::TokenStream {
    let mut out = proc_macro2::TokenStream::new();
    if grants.iter().any(|(_, f, _)| !f.is_empty()) {
        let arms = grants.iter().map(|(variant, features, _)| {
            quote! { Self::#variant => &[ #( <#features as #krate::Feature>::NAME ),* ], }
        });
        out.extend(quote! {
            fn features(&self) -> &'static [&'static str] {
                match self { #( #arms )* }
            }
        });
    }
    if grants.iter().any(|(_, _, l)| !l.is_empty()) {
        let arms = grants.iter().map(|(variant, _, limits)| {
            let entries = limits.iter().map(|(path, allowed)| {
                let allowed = match allowed {
                    Some(n) => quote! { ::core::option::Option::Some(#n) },
                    None => quote! { ::core::option::Option::None },
                };
                quote! { (<#path as #krate::Limit>::NAME, #allowed) }
            });
            quote! { Self::#variant => &[ #( #entries ),* ], }
        });
        out.extend(quote! {
            fn limits(&self) -> &'static [(&'static str, ::core::option::Option<u64>)] {
                match self { #( #arms )* }
            }
        });
    }
    out
}
