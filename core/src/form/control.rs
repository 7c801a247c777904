//! Which controls of a form count and what each adds: HTML's entry list, typed as skapi-js
//! types it (a checkbox without a `value` attribute is `true`/`false`, a number input a
//! number). The SDK reads each control's state from the page (or from the snapshot the loader
//! took when the form was submitted before the wasm had loaded) into a [`Control`].

use super::{Field, FieldValue};

/// What kind of control an element is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlKind {
    /// `<input>` of this `type` (as the DOM reports it: lower case, `text` when unknown).
    Input(String),
    Select,
    TextArea,
    /// The button that submitted the form: the only button that counts.
    Submitter,
    /// `<button>`, `<fieldset>`, `<output>`, `<object>`: no value of their own.
    Other,
}

/// A control's state at submit time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Control {
    pub name: String,
    pub kind: Option<ControlKind>,
    /// Disabled itself or by a disabled fieldset (`:disabled`).
    pub disabled: bool,
    /// `<select multiple>`, `<input type=file multiple>`.
    pub multiple: bool,
    pub value: String,
    /// A number or range input's value as a number (the page's own reading: parsing floats here
    /// would bring the float parser's tables into the wasm).
    pub number: Option<f64>,
    pub checked: bool,
    /// Whether the element has a `value` attribute.
    pub has_value_attribute: bool,
    /// The values of a `<select>`'s chosen options.
    pub selected: Vec<String>,
    /// How many files an `<input type=file>` holds.
    pub files: usize,
}

/// What of an `<input>` its fields depend on, by its `type`: the SDK reads only that from the
/// page (each read crosses from the wasm into JavaScript).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InputReads {
    pub value: bool,
    /// `checked`, and whether it has a `value` attribute.
    pub checked: bool,
    /// `files`, and `multiple`.
    pub files: bool,
    /// `value` as a number.
    pub number: bool,
}

impl InputReads {
    /// For an input of `kind`; `submitter` when it is the button that submitted the form.
    pub fn of(kind: &str, submitter: bool) -> InputReads {
        let value = InputReads { value: true, ..InputReads::default() };
        match kind {
            "checkbox" | "radio" => InputReads { checked: true, ..value },
            "file" => InputReads { files: true, ..InputReads::default() },
            "submit" | "image" | "button" | "reset" => InputReads { value: submitter, ..InputReads::default() },
            "number" | "range" => InputReads { number: true, ..value },
            _ => value,
        }
    }
}

impl Control {
    /// Appends the fields this control adds to `out`; its files are numbered from `first_file`.
    pub fn fields(&self, first_file: usize, out: &mut Vec<Field>) {
        let Some(kind) = self.kind.as_ref().filter(|_| !self.name.is_empty() && !self.disabled) else {
            return;
        };
        let mut push = |value: FieldValue, many: bool| out.push(Field { name: self.name.clone(), value, many });
        let text = || FieldValue::Text(self.value.clone());
        match kind {
            ControlKind::Input(kind) => match kind.as_str() {
                // Each chosen file, as FormData has them (an input with none chosen adds nothing).
                "file" => (0..self.files).for_each(|n| push(FieldValue::File(first_file + n), self.multiple)),
                "submit" | "image" | "button" | "reset" => {}
                "checkbox" if !self.has_value_attribute => push(FieldValue::Bool(self.checked), false),
                "checkbox" | "radio" if self.checked => push(text(), false),
                "checkbox" | "radio" => {}
                "number" | "range" => {
                    if let Some(n) = self.number.filter(|n| n.is_finite()) {
                        push(FieldValue::Number(n), false);
                    }
                }
                _ => push(text(), false),
            },
            ControlKind::Select => self.selected.iter().for_each(|v| push(FieldValue::Text(v.clone()), self.multiple)),
            ControlKind::TextArea | ControlKind::Submitter => push(text(), false),
            ControlKind::Other => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(kind: &str, value: &str) -> Control {
        Control { name: "f".into(), kind: Some(ControlKind::Input(kind.into())), value: value.into(), ..Default::default() }
    }

    fn fields(control: &Control) -> Vec<(FieldValue, bool)> {
        let mut out = Vec::new();
        control.fields(3, &mut out);
        out.into_iter().map(|f| (f.value, f.many)).collect()
    }

    fn text(s: &str) -> (FieldValue, bool) {
        (FieldValue::Text(s.into()), false)
    }

    #[test]
    fn only_what_decides_an_inputs_fields_is_read() {
        let reads = |kind, submitter| InputReads::of(kind, submitter);
        assert_eq!(reads("text", false), InputReads { value: true, ..Default::default() });
        assert_eq!(reads("checkbox", false), InputReads { value: true, checked: true, ..Default::default() });
        assert_eq!(reads("file", false), InputReads { files: true, ..Default::default() });
        assert_eq!(reads("number", false), InputReads { value: true, number: true, ..Default::default() });
        assert_eq!(reads("submit", false), InputReads::default());
        assert_eq!(reads("submit", true), InputReads { value: true, ..Default::default() });
        // What is read is all `fields` looks at: the same input read in full gives the same fields.
        for kind in ["text", "checkbox", "radio", "number", "file", "submit", "hidden"] {
            let r = reads(kind, false);
            let full = Control { checked: true, has_value_attribute: true, number: Some(3.0), files: 1, ..input(kind, "7") };
            let read = Control {
                value: if r.value { full.value.clone() } else { String::new() },
                checked: r.checked && full.checked,
                has_value_attribute: r.checked && full.has_value_attribute,
                number: full.number.filter(|_| r.number),
                files: if r.files { full.files } else { 0 },
                ..full.clone()
            };
            assert_eq!(fields(&read), fields(&full), "{kind}");
        }
    }

    #[test]
    fn text_like_inputs_and_textareas_give_their_value() {
        assert_eq!(fields(&input("text", "hi")), vec![text("hi")]);
        assert_eq!(fields(&input("hidden", "")), vec![text("")]);
        let area = Control { kind: Some(ControlKind::TextArea), ..input("", "a\nb") };
        assert_eq!(fields(&area), vec![text("a\nb")]);
    }

    #[test]
    fn unnamed_disabled_and_button_controls_add_nothing() {
        assert_eq!(fields(&Control { name: String::new(), ..input("text", "x") }), vec![]);
        assert_eq!(fields(&Control { disabled: true, ..input("text", "x") }), vec![]);
        for kind in ["submit", "image", "button", "reset"] {
            assert_eq!(fields(&input(kind, "x")), vec![], "{kind}");
        }
        assert_eq!(fields(&Control { kind: Some(ControlKind::Other), ..input("", "x") }), vec![]);
        assert_eq!(fields(&Control { kind: None, ..input("", "x") }), vec![]);
        let submitter = Control { kind: Some(ControlKind::Submitter), ..input("", "go") };
        assert_eq!(fields(&submitter), vec![text("go")]);
    }

    #[test]
    fn checkboxes_and_radios() {
        let unchecked = input("checkbox", "on");
        assert_eq!(fields(&Control { has_value_attribute: true, ..unchecked.clone() }), vec![]);
        assert_eq!(fields(&Control { has_value_attribute: true, checked: true, ..unchecked.clone() }), vec![text("on")]);
        // Without a value attribute a checkbox says whether it is checked.
        assert_eq!(fields(&unchecked), vec![(FieldValue::Bool(false), false)]);
        assert_eq!(fields(&Control { checked: true, ..unchecked }), vec![(FieldValue::Bool(true), false)]);
        assert_eq!(fields(&input("radio", "b")), vec![]);
        assert_eq!(fields(&Control { checked: true, ..input("radio", "b") }), vec![text("b")]);
    }

    #[test]
    fn numbers_are_numbers_and_empty_ones_are_left_out() {
        let number = |kind: &str, n: Option<f64>| Control { number: n, ..input(kind, "") };
        assert_eq!(fields(&number("number", Some(1500.0))), vec![(FieldValue::Number(1500.0), false)]);
        assert_eq!(fields(&number("range", Some(-0.5))), vec![(FieldValue::Number(-0.5), false)]);
        assert_eq!(fields(&number("number", None)), vec![]);
        assert_eq!(fields(&number("number", Some(f64::NAN))), vec![]);
    }

    #[test]
    fn selects_give_their_chosen_options_and_files_their_places() {
        let select = Control { kind: Some(ControlKind::Select), selected: vec!["a".into(), "c".into()], multiple: true, ..Default::default() };
        let select = Control { name: "s".into(), ..select };
        assert_eq!(fields(&select), vec![(FieldValue::Text("a".into()), true), (FieldValue::Text("c".into()), true)]);
        let none = Control { selected: vec![], multiple: false, ..select };
        assert_eq!(fields(&none), vec![]);
        let email = Control { multiple: true, ..input("email", "a@b.c") };
        assert_eq!(fields(&email), vec![text("a@b.c")], "one text, not an array");
        let files = Control { files: 2, multiple: true, ..input("file", "C:\\fakepath\\a.txt") };
        assert_eq!(fields(&files), vec![(FieldValue::File(3), true), (FieldValue::File(4), true)]);
        assert_eq!(fields(&Control { files: 0, ..files }), vec![]);
    }
}
