//! `#[pglease::test]`: an async test on a database of its own, leased from pgleased. Use it
//! through the `pglease` crate (feature `sqlx`), which documents it.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::{FnArg, ItemFn, LitBool, LitStr, ReturnType, Type, parse_macro_input};

/// What the attribute was given.
struct Args {
    template: Option<LitStr>,
    /// `None`: the default `migrations`; `Some(None)`: `migrations = false`.
    migrations: Option<Option<LitStr>>,
}

fn parse_args(tokens: proc_macro2::TokenStream) -> syn::Result<Args> {
    let mut args = Args { template: None, migrations: None };
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("template") {
            let name: LitStr = meta.value()?.parse()?;
            let valid = name.value().chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && name.value().len() <= 27
                && name.value().chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return Err(meta.error("a template name is a lowercase letter, then up to 26 of a-z, 0-9 and _"));
            }
            args.template = Some(name);
            Ok(())
        } else if meta.path.is_ident("migrations") {
            let value = meta.value()?;
            if value.peek(LitBool) {
                let flag: LitBool = value.parse()?;
                if flag.value {
                    return Err(syn::Error::new(flag.span(), "say which directory: migrations = \"migrations\""));
                }
                args.migrations = Some(None);
            } else {
                args.migrations = Some(Some(value.parse()?));
            }
            Ok(())
        } else {
            Err(meta.error("pglease::test takes `template = \"name\"` and `migrations = \"dir\" | false`"))
        }
    });
    parser.parse2(tokens)?;
    Ok(args)
}

/// Runs an async test on a fresh database leased from pgleased (see the `pglease` crate).
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let input = parse_macro_input!(item as ItemFn);
    match parse_args(args.into()).and_then(|args| expand(args, input)) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

fn expand(args: Args, input: ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    let Some(template) = args.template else {
        return Err(syn::Error::new(
            Span::call_site(),
            "pglease::test needs a template: #[pglease::test(template = \"app\")]",
        ));
    };
    let signature = &input.sig;
    if signature.asyncness.is_none() {
        return Err(syn::Error::new_spanned(signature.fn_token, "pglease::test runs async functions: `async fn`"));
    }
    if !signature.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(&signature.generics, "a pglease::test function cannot be generic"));
    }
    if let ReturnType::Type(_, ty) = &signature.output
        && matches!(**ty, Type::ImplTrait(_))
    {
        return Err(syn::Error::new_spanned(ty, "a pglease::test function returns (), or a Result"));
    }
    let mut types = Vec::new();
    for argument in &signature.inputs {
        match argument {
            FnArg::Typed(typed) => types.push(typed.ty.clone()),
            FnArg::Receiver(receiver) => {
                return Err(syn::Error::new_spanned(receiver, "a pglease::test function takes no self"));
            }
        }
    }
    let migrations = match args.migrations {
        None => quote!(::core::option::Option::Some("migrations")),
        Some(Some(dir)) => quote!(::core::option::Option::Some(#dir)),
        Some(None) => quote!(::core::option::Option::None),
    };
    let name = &signature.ident;
    let inner = format_ident!("__pglease_{}", name);
    let mut inner_signature = signature.clone();
    inner_signature.ident = inner.clone();
    let attrs = &input.attrs;
    let vis = &input.vis;
    let output = &signature.output;
    let body = &input.block;
    Ok(quote! {
        #(#attrs)*
        #[::core::prelude::v1::test]
        #vis fn #name() #output {
            #inner_signature #body
            ::pglease::testing::run(
                ::pglease::testing::TestArgs {
                    template: #template,
                    migrations: #migrations,
                    manifest_dir: ::core::env!("CARGO_MANIFEST_DIR"),
                    test: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                },
                |context| async move {
                    #inner(#(<#types as ::pglease::testing::TestArg>::from_context(&context).await),*).await
                },
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{ItemFn, expand, parse_args};

    fn error(args: &str, item: &str) -> String {
        let item: ItemFn = syn::parse_str(item).unwrap();
        match parse_args(args.parse().unwrap()).and_then(|args| expand(args, item)) {
            Ok(tokens) => panic!("expanded to {tokens}"),
            Err(error) => error.to_string(),
        }
    }

    #[::core::prelude::v1::test]
    fn misuse_is_refused_saying_what_to_write() {
        assert!(error("", "async fn t() {}").contains("needs a template"));
        assert!(error("template = \"App\"", "async fn t() {}").contains("lowercase letter"));
        assert!(error("template = \"app\"", "fn t() {}").contains("async fn"));
        assert!(error("template = \"app\", migrations = true", "async fn t() {}").contains("which directory"));
        assert!(error("template = \"app\", pool = 3", "async fn t() {}").contains("takes `template"));
        assert!(error("template = \"app\"", "async fn t<T>() {}").contains("generic"));
    }

    #[::core::prelude::v1::test]
    fn the_test_keeps_its_attributes_and_passes_each_argument() {
        let item: ItemFn =
            syn::parse_str("#[should_panic] async fn t(pool: PgPool, lease: LeaseInfo) -> Result<(), E> {}").unwrap();
        let args = parse_args("template = \"app\", migrations = \"db/migrations\"".parse().unwrap()).unwrap();
        let text = expand(args, item).unwrap().to_string();
        for part in [
            "# [should_panic]",
            "# [:: core :: prelude :: v1 :: test]",
            "fn t () -> Result < () , E >",
            "template : \"app\"",
            "Some (\"db/migrations\")",
            "< PgPool as :: pglease :: testing :: TestArg >",
            "< LeaseInfo as :: pglease :: testing :: TestArg >",
        ] {
            assert!(text.contains(part), "{part} not in {text}");
        }
    }
}
