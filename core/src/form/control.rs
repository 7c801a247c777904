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
