//! Logto's REST APIs for Python: the arguments of one generic call (`ApiCall`, `RetryPolicy`)
//! and its answer, `(status, total_number, body_text)`. The Management API's calls are
//! `MachineClient.management_call`, the Account API's `CoreClient.account_call`.

use super::convert::seconds;
use super::operation::Output;
use crate::api::{ApiCall, ApiResponse, RetryPolicy};
use crate::error::Result;

/// The call from the values the generated Python clients pass.
pub(crate) fn api_call(
    method: &str,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    body: Option<String>,
    headers: Vec<(String, String)>,
) -> Result<ApiCall> {
    let mut call = ApiCall::new(ApiCall::method_named(method)?, segments);
    call.query = query;
    call.body = body;
    call.headers = headers;
    Ok(call)
}

/// `(max_retries, base_delay, max_delay)`, the delays in seconds.
pub(crate) fn retry_policy(retry: (u32, f64, f64)) -> Result<RetryPolicy> {
    let (max_retries, base_delay, max_delay) = retry;
    Ok(RetryPolicy {
        max_retries,
        base_delay: seconds("baseDelay", base_delay)?,
        max_delay: seconds("maxDelay", max_delay)?,
    })
}

/// The answer as the tuple Python receives.
pub(crate) fn api_output(response: ApiResponse) -> Output {
    Output::Api(response.status, response.total_number, response.body)
}
