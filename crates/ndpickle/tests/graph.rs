//! `read::graph_from_bytes_payload_accounted`: the value with the pickle's sharing kept
//! (what the Python bindings read), against the tree readers, on pickles CPython writes.

use bytes::Bytes;
use ndpickle::read::{Graph, graph_from_bytes_payload_accounted};
use ndpickle::{ReadOptions, Value, from_slice};

fn graph(pickle: &'static [u8]) -> Graph {
    graph_from_bytes_payload_accounted(
        Bytes::from_static(pickle),
        Vec::<Bytes>::new(),
        &ReadOptions::default(),
    )
    .unwrap()
    .0
}

#[test]
fn recursive_list_is_a_reference_to_itself() {
    // pickle.dumps(l, 2) with l.append(l)
    let p = b"\x80\x02]q\x00h\x00a.";
    let g = graph(p);
    assert_eq!(g.root, Value::Ref(0));
    assert_eq!(g.shared, vec![Value::List(vec![Value::Ref(0)])]);
    let e = from_slice(p).unwrap_err();
    assert!(e.to_string().contains("recursive"), "{e}");
}

#[test]
fn shared_list_is_built_once_and_copied_in_trees() {
    // pickle.dumps([x, x], 2) with x = [1]
    let p = b"\x80\x02]q\x00(]q\x01K\x01ah\x01e.";
    let g = graph(p);
    assert_eq!(g.root, Value::List(vec![Value::Ref(0), Value::Ref(0)]));
    assert_eq!(g.shared, vec![Value::List(vec![Value::Int(1)])]);
    let one = Value::List(vec![Value::Int(1)]);
    assert_eq!(from_slice(p).unwrap(), Value::List(vec![one.clone(), one]));
}

#[test]
fn dup_bomb_is_linear_in_a_graph() {
    // A list doubled 64 times with DUP: 2**64 leaves as a tree, 64 shared lists as a graph.
    let mut p = b"\x80\x04](K\x01e".to_vec();
    for _ in 0..64 {
        p.extend_from_slice(b"2\x86"); // DUP, TUPLE2: (x, x)
    }
    p.push(b'.');
    let g = graph_from_bytes_payload_accounted(
        Bytes::from(p.clone()),
        Vec::<Bytes>::new(),
        &ReadOptions::builder().max_copied_bytes(0).build().unwrap(),
    )
    .unwrap()
    .0;
    assert_eq!(g.shared.len(), 64);
    let e = from_slice(&p).unwrap_err();
    assert!(e.to_string().contains("copied"), "{e}");
}

#[test]
fn python2_strings_stay_bytes_in_a_graph_and_latin1_in_trees() {
    let g = graph(b"\x80\x02U\x04caf\xe9q\x00.");
    assert_eq!(g.root, Value::Py2Str(Bytes::from_static(b"caf\xe9")));
    assert_eq!(
        from_slice(b"\x80\x02U\x04caf\xe9q\x00.").unwrap(),
        Value::Str("caf\u{e9}".into())
    );
}

#[test]
fn lone_surrogates_are_kept_in_a_graph_and_refused_in_trees() {
    // pickle.dumps('\ud800', 4)
    let p = b"\x80\x04\x8c\x03\xed\xa0\x80\x94.";
    let g = graph(p);
    assert_eq!(
        g.root,
        Value::SurrogateStr(Bytes::from_static(b"\xed\xa0\x80"))
    );
    assert!(from_slice(p).is_err());
}

#[test]
fn standard_library_values_are_objects_naming_their_type() {
    // pickle.dumps(datetime.date(2020, 1, 2), 4)
    let p = b"\x80\x04\x95\x20\x00\x00\x00\x00\x00\x00\x00\x8c\x08datetime\x94\x8c\x04date\x94\x93\x94C\x04\x07\xe4\x01\x02\x94\x85\x94R\x94.";
    let Value::Object(o) = from_slice(p).unwrap() else {
        panic!("not an object")
    };
    assert_eq!(o.callable.to_string(), "datetime.date");
    assert_eq!(
        o.args,
        vec![Value::Bytes(Bytes::from_static(b"\x07\xe4\x01\x02"))]
    );
    // defaultdict(os.system) stays refused.
    let evil = b"\x80\x02ccollections\ndefaultdict\ncos\nsystem\n\x85R.";
    let e = from_slice(evil).unwrap_err();
    assert!(e.to_string().contains("os.system"), "{e}");
}
