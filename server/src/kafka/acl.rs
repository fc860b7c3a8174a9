//! Kafka ACLs through librdkafka's admin API. rdkafka (the Rust crate) has no ACL calls, so this
//! is the one module that talks to `rdkafka::bindings` directly: every pointer it creates is
//! owned by a guard that frees it, and nothing unsafe leaks out of the three functions.
//!
//! The calls block until the broker answers or `timeout` passes: run them off the async runtime.

use std::ffi::{CStr, CString, c_char};
use std::ptr;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};

pub use rd::rd_kafka_AclOperation_t as Operation;
pub use rd::rd_kafka_AclPermissionType_t as Permission;
pub use rd::rd_kafka_ResourcePatternType_t as PatternType;
pub use rd::rd_kafka_ResourceType_t as ResourceType;

/// One ACL binding: `principal` may `operation` (`permission`) on the resource from `host`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern_type: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclBinding {
    /// An ALLOW binding from any host.
    pub fn allow(
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
        principal: &str,
        operation: Operation,
    ) -> Self {
        Self {
            resource_type,
            name: name.to_owned(),
            pattern_type,
            principal: principal.to_owned(),
            host: "*".to_owned(),
            operation,
            permission: Permission::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW,
        }
    }

    /// A short human form, e.g. `User:c83.1 READ TOPIC c83 (LITERAL)`.
    pub fn describe(&self) -> String {
        format!(
            "{} {:?} {:?} {} ({:?}, {:?}, host {})",
            self.principal,
            self.operation,
            self.resource_type,
            self.name,
            self.pattern_type,
            self.permission,
            self.host
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AclError {
    #[error("{0}")]
    Invalid(String),
    #[error("no answer from the cluster within {0:?}")]
    Timeout(Duration),
    #[error("{api} failed: {message}")]
    Kafka { api: &'static str, message: String },
}

/// Creates `acls` (creating an existing binding is a no-op on the broker). The outer error means
/// the request failed as a whole; otherwise one result per binding, in order.
pub fn create_acls<C: ClientContext>(
    client: &Client<C>,
    acls: &[AclBinding],
    timeout: Duration,
) -> Result<Vec<Result<(), String>>, AclError> {
    if acls.is_empty() {
        return Ok(Vec::new());
    }
    let mut bindings = Bindings::new(acls, false)?;
    let call = Call::new(client, rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEACLS, timeout)?;
    // SAFETY: rk, bindings, options and queue are valid for the call; librdkafka copies the bindings.
    unsafe { rd::rd_kafka_CreateAcls(call.rk, bindings.as_mut_ptr(), bindings.len(), call.options, call.queue) };
    let event = call.wait("CreateAcls")?;
    // SAFETY: the event is a CreateAcls result (checked by librdkafka: null otherwise).
    let result = unsafe { rd::rd_kafka_event_CreateAcls_result(event.0) };
    if result.is_null() {
        return Err(AclError::Kafka { api: "CreateAcls", message: "unexpected event type".into() });
    }
    let mut count = 0usize;
    // SAFETY: result is valid while the event lives; the array holds `count` pointers.
    let results = unsafe { rd::rd_kafka_CreateAcls_result_acls(result, &mut count) };
    let mut out: Vec<Result<(), String>> = (0..count)
        // SAFETY: i < count.
        .map(|i| match error_message(unsafe { rd::rd_kafka_acl_result_error(*results.add(i)) }) {
            Some(message) => Err(message),
            None => Ok(()),
        })
        .collect();
    out.resize(acls.len(), Err("no result from the broker".into()));
    Ok(out)
}

/// Every binding on the cluster matching the filter; `None` fields match anything.
pub fn describe_acls<C: ClientContext>(
    client: &Client<C>,
    principal: Option<&str>,
    timeout: Duration,
) -> Result<Vec<AclBinding>, AclError> {
    let filter = AclFilter::any(principal)?;
    let call = Call::new(client, rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBEACLS, timeout)?;
    // SAFETY: all pointers are valid for the call; the filter is copied by librdkafka.
    unsafe { rd::rd_kafka_DescribeAcls(call.rk, filter.0, call.options, call.queue) };
    let event = call.wait("DescribeAcls")?;
    // SAFETY: see create_acls.
    let result = unsafe { rd::rd_kafka_event_DescribeAcls_result(event.0) };
    if result.is_null() {
        return Err(AclError::Kafka { api: "DescribeAcls", message: "unexpected event type".into() });
    }
    let mut count = 0usize;
    // SAFETY: the array and its bindings live as long as the event.
    let bindings = unsafe { rd::rd_kafka_DescribeAcls_result_acls(result, &mut count) };
    Ok((0..count).map(|i| unsafe { read_binding(*bindings.add(i)) }).collect())
}

/// Deletes exactly the given bindings. The outer error means the request failed as a whole;
/// otherwise one result per binding, in order, with how many bindings it removed.
pub fn delete_acls<C: ClientContext>(
    client: &Client<C>,
    acls: &[AclBinding],
    timeout: Duration,
) -> Result<Vec<Result<usize, String>>, AclError> {
    if acls.is_empty() {
        return Ok(Vec::new());
    }
    // An exact filter per binding, so nothing but these bindings can match.
    let mut filters = Bindings::new(acls, true)?;
    let call = Call::new(client, rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DELETEACLS, timeout)?;
    // SAFETY: as for create_acls.
    unsafe { rd::rd_kafka_DeleteAcls(call.rk, filters.as_mut_ptr(), filters.len(), call.options, call.queue) };
    let event = call.wait("DeleteAcls")?;
    // SAFETY: see create_acls.
    let result = unsafe { rd::rd_kafka_event_DeleteAcls_result(event.0) };
    if result.is_null() {
        return Err(AclError::Kafka { api: "DeleteAcls", message: "unexpected event type".into() });
    }
    let mut count = 0usize;
    // SAFETY: valid while the event lives.
    let responses = unsafe { rd::rd_kafka_DeleteAcls_result_responses(result, &mut count) };
    let mut out: Vec<Result<usize, String>> = (0..count)
        .map(|i| {
            // SAFETY: i < count; the response lives as long as the event.
            let response = unsafe { *responses.add(i) };
            if let Some(message) = error_message(unsafe { rd::rd_kafka_DeleteAcls_result_response_error(response) }) {
                return Err(message);
            }
            let mut matched = 0usize;
            // SAFETY: response is valid; only the count is used.
            unsafe { rd::rd_kafka_DeleteAcls_result_response_matching_acls(response, &mut matched) };
            Ok(matched)
        })
        .collect();
    out.resize(acls.len(), Err("no result from the broker".into()));
    Ok(out)
}

fn cstring(field: &str, value: &str) -> Result<CString, AclError> {
    CString::new(value).map_err(|_| AclError::Invalid(format!("ACL {field} contains a NUL byte")))
}

/// # Safety
/// `p` must be null or a valid NUL-terminated string.
unsafe fn string_at(p: *const c_char) -> String {
    if p.is_null() { String::new() } else { unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned() }
}

/// # Safety
/// `b` must point to a valid binding.
unsafe fn read_binding(b: *const rd::rd_kafka_AclBinding_t) -> AclBinding {
    unsafe {
        AclBinding {
            resource_type: rd::rd_kafka_AclBinding_restype(b),
            name: string_at(rd::rd_kafka_AclBinding_name(b)),
            pattern_type: rd::rd_kafka_AclBinding_resource_pattern_type(b),
            principal: string_at(rd::rd_kafka_AclBinding_principal(b)),
            host: string_at(rd::rd_kafka_AclBinding_host(b)),
            operation: rd::rd_kafka_AclBinding_operation(b),
            permission: rd::rd_kafka_AclBinding_permission_type(b),
        }
    }
}

fn error_message(error: *const rd::rd_kafka_error_t) -> Option<String> {
    if error.is_null() {
        return None;
    }
    // SAFETY: non-null error objects owned by the result; the string lives as long as the error.
    Some(unsafe { string_at(rd::rd_kafka_error_string(error)) })
}

/// Owned array of librdkafka bindings (or filters, which share the type).
struct Bindings(Vec<*mut rd::rd_kafka_AclBinding_t>);

impl Bindings {
    fn new(acls: &[AclBinding], as_filters: bool) -> Result<Self, AclError> {
        let mut out = Bindings(Vec::with_capacity(acls.len()));
        for acl in acls {
            let name = cstring("resource name", &acl.name)?;
            let principal = cstring("principal", &acl.principal)?;
            let host = cstring("host", &acl.host)?;
            let mut errstr = [0 as c_char; 512];
            let make = if as_filters { rd::rd_kafka_AclBindingFilter_new } else { rd::rd_kafka_AclBinding_new };
            // SAFETY: the strings outlive the call (librdkafka copies them); errstr is writable.
            let ptr = unsafe {
                make(
                    acl.resource_type,
                    name.as_ptr(),
                    acl.pattern_type,
                    principal.as_ptr(),
                    host.as_ptr(),
                    acl.operation,
                    acl.permission,
                    errstr.as_mut_ptr(),
                    errstr.len(),
                )
            };
            if ptr.is_null() {
                // SAFETY: librdkafka wrote a NUL-terminated message into errstr.
                return Err(AclError::Invalid(unsafe { string_at(errstr.as_ptr()) }));
            }
            out.0.push(ptr);
        }
        Ok(out)
    }

    fn as_mut_ptr(&mut self) -> *mut *mut rd::rd_kafka_AclBinding_t {
        self.0.as_mut_ptr()
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

impl Drop for Bindings {
    fn drop(&mut self) {
        for &p in &self.0 {
            // SAFETY: created by AclBinding(Filter)_new and not freed elsewhere.
            unsafe { rd::rd_kafka_AclBinding_destroy(p) };
        }
    }
}

/// A filter matching every binding, or every binding of one principal.
struct AclFilter(*mut rd::rd_kafka_AclBindingFilter_t);

impl AclFilter {
    fn any(principal: Option<&str>) -> Result<Self, AclError> {
        let principal = principal.map(|p| cstring("principal", p)).transpose()?;
        let mut errstr = [0 as c_char; 512];
        // SAFETY: null pointers mean "any" for name, principal and host.
        let ptr = unsafe {
            rd::rd_kafka_AclBindingFilter_new(
                ResourceType::RD_KAFKA_RESOURCE_ANY,
                ptr::null(),
                PatternType::RD_KAFKA_RESOURCE_PATTERN_ANY,
                principal.as_ref().map_or(ptr::null(), |p| p.as_ptr()),
                ptr::null(),
                Operation::RD_KAFKA_ACL_OPERATION_ANY,
                Permission::RD_KAFKA_ACL_PERMISSION_TYPE_ANY,
                errstr.as_mut_ptr(),
                errstr.len(),
            )
        };
        if ptr.is_null() {
            // SAFETY: as above.
            return Err(AclError::Invalid(unsafe { string_at(errstr.as_ptr()) }));
        }
        Ok(Self(ptr))
    }
}

impl Drop for AclFilter {
    fn drop(&mut self) {
        // SAFETY: created above, freed once.
        unsafe { rd::rd_kafka_AclBinding_destroy(self.0) };
    }
}

/// One admin request: a private result queue and the request options.
struct Call {
    rk: *mut rd::rd_kafka_t,
    queue: *mut rd::rd_kafka_queue_t,
    options: *mut rd::rd_kafka_AdminOptions_t,
    timeout: Duration,
}

impl Call {
    fn new<C: ClientContext>(
        client: &Client<C>,
        op: rd::rd_kafka_admin_op_t,
        timeout: Duration,
    ) -> Result<Self, AclError> {
        let rk = client.native_ptr();
        // SAFETY: rk is a live client handle for as long as `client` is borrowed.
        let queue = unsafe { rd::rd_kafka_queue_new(rk) };
        let options = unsafe { rd::rd_kafka_AdminOptions_new(rk, op) };
        let call = Self { rk, queue, options, timeout };
        let mut errstr = [0 as c_char; 512];
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: options is valid; errstr is writable.
        let err = unsafe {
            rd::rd_kafka_AdminOptions_set_request_timeout(call.options, ms, errstr.as_mut_ptr(), errstr.len())
        };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(AclError::Invalid(unsafe { string_at(errstr.as_ptr()) }));
        }
        Ok(call)
    }

    /// Waits for the result event (a little longer than the request timeout, which librdkafka enforces).
    fn wait(&self, api: &'static str) -> Result<Event, AclError> {
        let wait = self.timeout + Duration::from_secs(2);
        // SAFETY: queue is valid; a null event means the wait timed out.
        let event = unsafe { rd::rd_kafka_queue_poll(self.queue, wait.as_millis().min(i32::MAX as u128) as i32) };
        if event.is_null() {
            return Err(AclError::Timeout(wait));
        }
        let event = Event(event);
        // SAFETY: event is valid until dropped.
        let err = unsafe { rd::rd_kafka_event_error(event.0) };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            let message = unsafe { string_at(rd::rd_kafka_event_error_string(event.0)) };
            return Err(AclError::Kafka { api, message });
        }
        Ok(event)
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // SAFETY: created in new(), freed once.
        unsafe {
            rd::rd_kafka_AdminOptions_destroy(self.options);
            rd::rd_kafka_queue_destroy(self.queue);
        }
    }
}

struct Event(*mut rd::rd_kafka_event_t);

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: polled from the queue, freed once.
        unsafe { rd::rd_kafka_event_destroy(self.0) };
    }
}
