use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use serde::{Deserialize, Deserializer, Serialize};
use std::future::Future;

use crate::client::Result;

/// One page of a list, as Octany sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items of this page.
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    /// Where this page stands; absent means "the only page".
    #[serde(default)]
    pub pagination: Pagination,
    /// When the page was true, by Octany's clock (its `Date` header), if sent.
    #[serde(skip)]
    pub observed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Pagination in either spelling Octany uses (`per_page` or `perPage`, ...;
/// `links` as `{"next": url}` or as `[]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pagination {
    /// Items in all pages.
    #[serde(default, deserialize_with = "crate::domain::model::lenient::opt_int")]
    pub total: Option<i64>,
    /// Items on this page.
    #[serde(default, deserialize_with = "crate::domain::model::lenient::opt_int")]
    pub count: Option<i64>,
    /// Page size.
    #[serde(
        default,
        alias = "perPage",
        deserialize_with = "crate::domain::model::lenient::opt_int"
    )]
    pub per_page: Option<i64>,
    /// This page's number, from 1.
    #[serde(
        default,
        alias = "currentPage",
        deserialize_with = "crate::domain::model::lenient::opt_int"
    )]
    pub current_page: Option<i64>,
    /// How many pages there are.
    #[serde(
        default,
        alias = "totalPages",
        deserialize_with = "crate::domain::model::lenient::opt_int"
    )]
    pub total_pages: Option<i64>,
    /// The next page's URL: `Some(Some(url))` or `Some(None)` when `links`
    /// is an object; `None` when `links` is the older `[]` (which says
    /// nothing).
    #[serde(
        default,
        rename = "links",
        deserialize_with = "links_next",
        skip_serializing
    )]
    pub next: Option<Option<String>>,
}

fn links_next<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Object(links)) => Some(
            links
                .get("next")
                .and_then(|n| n.as_str())
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        ),
        _ => None,
    })
}

impl<T> Page<T> {
    /// Whether another page follows (API.md section 2): stop when
    /// `current_page >= total_pages`, when `links` is an object without
    /// `next`, or on an empty page; a `links.next` is followed even when the
    /// page counts are missing. A page that says neither is the only one.
    pub fn has_next(&self) -> bool {
        let p = &self.pagination;
        let by_count = match (p.current_page, p.total_pages) {
            (Some(current), Some(total)) => Some(current < total),
            _ => None,
        };
        let by_link = p.next.as_ref().map(Option::is_some);
        let more = !matches!(
            (by_count, by_link),
            (Some(false), _) | (_, Some(false)) | (None, None)
        );
        more && !self.data.is_empty()
    }
}

/// Walks all pages from 1, holding one page in memory at a time.
pub(crate) fn walk<T, F, Fut>(fetch: F) -> BoxStream<'static, Result<T>>
where
    T: Send + 'static,
    F: Fn(u32) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Page<T>>> + Send + 'static,
{
    stream::try_unfold((fetch, Some(1u32)), |(fetch, next)| async move {
        let Some(page_no) = next else {
            return Ok::<_, crate::client::OctanyError>(None);
        };
        let page = fetch(page_no).await?;
        let next = page.has_next().then_some(page_no + 1);
        Ok(Some((page.data, (fetch, next))))
    })
    .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
    .try_flatten()
    .boxed()
}
