//! A process listing written as JSON with a bound on its size. What one
//! process weighs is bounded where it is read (a command line is at most
//! `collect::cmdline::MAX` bytes); how many processes there are is not —
//! anyone can start thousands — so the answer stops at [`ANSWER_MAX`] and
//! says so, and is written as the processes are read, a batch at a time,
//! never as a whole table in memory first.

use super::ApiError;
use crate::collect::procs::{ProcessReader, Query};
use std::{io::Write, ops::ControlFlow};

/// The most bytes of processes one listing answers (JSON, before
/// compression): several thousand processes with the default fields,
/// hundreds with every field. Past it, `truncated` is true and the client
/// asks for the rest with `offset`.
pub const ANSWER_MAX: usize = 4 << 20;

/// A listing as `ProcessList` JSON, and how many matched before paging.
pub fn write(reader: &mut ProcessReader, q: &Query) -> Result<(Vec<u8>, usize), ApiError> {
    write_bounded(reader, q, ANSWER_MAX)
}

fn write_bounded(
    reader: &mut ProcessReader,
    q: &Query,
    max: usize,
) -> Result<(Vec<u8>, usize), ApiError> {
    let mut out = b"{\"processes\":[".to_vec();
    let (mut answered, mut truncated, mut failed) = (0usize, false, None);
    let total = reader.list_each(q, |p| {
        let mark = out.len();
        if answered > 0 {
            out.push(b',');
        }
        if let Err(e) = serde_json::to_writer(&mut out, &p) {
            failed = Some(e);
            return ControlFlow::Break(());
        }
        // The first process is always answered, so paging on always moves.
        if answered > 0 && out.len() > max {
            out.truncate(mark);
            truncated = true;
            return ControlFlow::Break(());
        }
        answered += 1;
        ControlFlow::Continue(())
    });
    if let Some(e) = failed {
        return Err(ApiError::Internal(format!("cannot write the answer: {e}")));
    }
    // Writing to a Vec cannot fail.
    let _ = write!(out, "],\"total\":{total},\"truncated\":{truncated}}}");
    Ok((out, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::procs::{FieldSet, SortKey, View};

    fn query(limit: Option<usize>) -> Query {
        Query {
            user: None,
            name: None,
            sort: SortKey::Pid,
            descending: false,
            limit,
            offset: 0,
            fields: FieldSet::default_set(),
            view: View::Full,
        }
    }

    fn parse(body: &[u8]) -> serde_json::Value {
        serde_json::from_slice(body).expect("the answer is JSON")
    }

    #[test]
    fn a_listing_under_the_bound_is_whole() {
        let mut reader = ProcessReader::default();
        let (body, total) = write(&mut reader, &query(None)).unwrap();
        let v = parse(&body);
        assert!(total > 0);
        assert_eq!(v["truncated"], false);
        assert_eq!(v["total"], total);
        // Processes come and go between the two phases; never more than matched.
        let n = v["processes"].as_array().unwrap().len();
        assert!(n > 0 && n <= total, "{n} of {total}");
    }

    #[test]
    fn a_listing_over_the_bound_stops_short_and_says_so() {
        let mut reader = ProcessReader::default();
        let (body, total) = write_bounded(&mut reader, &query(None), 600).unwrap();
        assert!(body.len() < 600 + 200, "{}", body.len());
        let v = parse(&body);
        assert_eq!(v["truncated"], true, "{v}");
        let n = v["processes"].as_array().unwrap().len();
        assert!(n >= 1 && n < total, "{n} of {total}");
    }

    #[test]
    fn the_first_process_is_answered_whatever_its_size() {
        let mut reader = ProcessReader::default();
        let (body, _) = write_bounded(&mut reader, &query(Some(1)), 1).unwrap();
        let v = parse(&body);
        assert_eq!(v["processes"].as_array().unwrap().len(), 1, "{v}");
        assert_eq!(v["truncated"], false);
    }
}

#[cfg(test)]
mod document {
    #[test]
    fn the_openapi_document_states_the_command_line_bound_the_readers_use() {
        let doc = serde_json::to_value(crate::api::openapi()).unwrap();
        let props = &doc["components"]["schemas"]["ProcessInfo"]["properties"];
        let said = props["cmdline"]["description"].as_str().unwrap_or_default();
        let kib = crate::collect::cmdline::MAX / 1024;
        assert!(said.contains(&format!("{kib} KiB")), "{said}");
        assert!(props["cmdline_truncated"].is_object(), "{props}");
        let list = &doc["components"]["schemas"]["ProcessList"]["properties"];
        assert!(list["truncated"].is_object(), "{list}");
    }
}
