//! E2B's list calls page with `limit` / `nextToken`; the next cursor comes back in `X-Next-Token`.

use serde::de::DeserializeOwned;

use super::accounts::E2b;
use super::request::Request;
use sandman_protocol::e2b::E2bError;

const PAGE_SIZE: &str = "100";
const NEXT_TOKEN_HEADER: &str = "x-next-token";

impl E2b {
    /// Fetches every page of a list call. Each page is one call, with its own retries and deadline.
    pub(crate) async fn all_pages<'a, T: DeserializeOwned>(
        &self,
        request: impl Fn() -> Request<'a>,
    ) -> Result<Vec<T>, E2bError> {
        Ok(self.pages_up_to(request, usize::MAX).await?.0)
    }

    /// At most `max_pages` pages of a list call, and whether that was every page.
    pub(crate) async fn pages_up_to<'a, T: DeserializeOwned>(
        &self,
        request: impl Fn() -> Request<'a>,
        max_pages: usize,
    ) -> Result<(Vec<T>, bool), E2bError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..max_pages {
            let mut page = request().with_query("limit", PAGE_SIZE);
            if let Some(token) = &cursor {
                page = page.with_query("nextToken", token.clone());
            }
            let route = page.route;
            let reply = self.send(page).await?;
            items.extend(reply.json::<Vec<T>>(route)?);
            let next = reply
                .header(NEXT_TOKEN_HEADER)
                .filter(|token| !token.is_empty())
                .map(str::to_owned);
            match next {
                None => return Ok((items, true)),
                Some(token) if cursor.as_ref() == Some(&token) => {
                    return Err(E2bError::Unexpected {
                        status: reply.status.as_u16(),
                        message: format!("{route} returned the same page cursor twice"),
                    });
                }
                Some(token) => cursor = Some(token),
            }
        }
        Ok((items, false))
    }
}
