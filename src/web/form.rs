//! A form as the page shows it: its controls' state read from the DOM, or from the snapshot
//! the npm package's loader took when the form was submitted before the wasm had loaded (the
//! state the user had chosen, kept before anything could change it). Which controls count and
//! what each adds is `skapi_core::form::Control`'s.

use crate::js;
use skapi_core::form::{Control, ControlKind, Field, FieldValue};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    Element, FormData, HtmlButtonElement, HtmlFormElement, HtmlInputElement, HtmlOptionElement, HtmlSelectElement, HtmlTextAreaElement, SubmitEvent,
};

/// The key the loader marks its snapshots with (js/wrapper.mjs).
const SNAPSHOT: &str = "__skapiFormSnapshot";

/// A form's fields in document order, its chosen files (which `FieldValue::File` numbers) and
/// its `action` resolved against the page.
pub struct FormInput {
    pub fields: Vec<Field>,
    pub files: Vec<JsValue>,
    pub action: Option<String>,
}

/// The form behind `input`: a submit event (its default prevented here, synchronously), a
/// form, `FormData` or a loader's snapshot; `None` for anything else.
pub fn read(input: &JsValue) -> Option<FormInput> {
    if let Some(event) = input.dyn_ref::<SubmitEvent>() {
        event.prevent_default();
        let form = event.target()?.dyn_into::<HtmlFormElement>().ok()?;
        return Some(read_form(&form, event.submitter(), None));
    }
    if let Some(form) = input.dyn_ref::<HtmlFormElement>() {
        return Some(read_form(form, None, None));
    }
    if let Some(data) = input.dyn_ref::<FormData>() {
        return Some(read_form_data(data));
    }
    if input.is_object() && js::get(input, SNAPSHOT).is_truthy() {
        let form = js::get(input, "form").dyn_into::<HtmlFormElement>().ok()?;
        return Some(read_form(&form, js::get(input, "submitter").dyn_into().ok(), Some(input)));
    }
    None
}

fn read_form(form: &HtmlFormElement, submitter: Option<web_sys::HtmlElement>, snapshot: Option<&JsValue>) -> FormInput {
    let mut input = FormInput { fields: Vec::new(), files: Vec::new(), action: None };
    // Each control with the state the snapshot kept, or its state now.
    match snapshot {
        Some(snapshot) => {
            for state in js_sys::Array::from(&js::get(snapshot, "controls")).iter() {
                add(&mut input, &js_sys::Array::from(&state).get(0).unchecked_into(), &state, false);
            }
        }
        None => {
            let elements = form.elements();
            for i in 0..elements.length() {
                if let Some(element) = elements.item(i) {
                    add(&mut input, &element, &JsValue::UNDEFINED, false);
                }
            }
        }
    }
    // HTML's rule: of the buttons, only the one that submitted the form counts.
    if let Some(submitter) = submitter {
        let state = snapshot.map_or(JsValue::UNDEFINED, |s| js::get(s, "submitterState"));
        add(&mut input, &submitter, &state, true);
    }
    // `form.action` is the attribute resolved against the page's URL.
    input.action = form.has_attribute("action").then(|| form.action());
    input
}

/// Adds a control's fields, and its files to the form's.
fn add(input: &mut FormInput, element: &Element, state: &JsValue, submitter: bool) {
    let mut control = control(element, state);
    if submitter {
        control.kind = Some(ControlKind::Submitter);
    }
    control.fields(input.files.len(), &mut input.fields);
    if control.files > 0 {
        input.files.extend(files(element, state));
    }
}

/// A control's state: as `state` (a snapshot's `[element, value, checked, files, selected,
/// disabled]`) kept it, else as the element holds it now.
fn control(element: &Element, state: &JsValue) -> Control {
    let mut control = Control {
        name: element.get_attribute("name").unwrap_or_default(),
        disabled: element.matches(":disabled").unwrap_or(false),
        has_value_attribute: element.has_attribute("value"),
        ..Control::default()
    };
    let kind = if let Some(input) = element.dyn_ref::<HtmlInputElement>() {
        control.multiple = input.multiple();
        control.value = input.value();
        control.checked = input.checked();
        control.files = input.files().map_or(0, |f| f.length() as usize);
        ControlKind::Input(input.type_())
    } else if let Some(select) = element.dyn_ref::<HtmlSelectElement>() {
        control.multiple = select.multiple();
        let options = select.selected_options();
        for i in 0..options.length() {
            if let Some(option) = options.item(i) {
                control.selected.push(option.unchecked_into::<HtmlOptionElement>().value());
            }
        }
        ControlKind::Select
    } else if let Some(area) = element.dyn_ref::<HtmlTextAreaElement>() {
        control.value = area.value();
        ControlKind::TextArea
    } else if let Some(button) = element.dyn_ref::<HtmlButtonElement>() {
        control.value = button.value();
        ControlKind::Other
    } else {
        ControlKind::Other
    };
    control.kind = Some(kind);
    if !state.is_undefined() {
        let state = js_sys::Array::from(state);
        control.value = state.get(1).as_string().unwrap_or_default();
        control.checked = state.get(2).is_truthy();
        control.files = js_sys::Array::from(&state.get(3)).length() as usize;
        control.selected = js_sys::Array::from(&state.get(4)).iter().filter_map(|v| v.as_string()).collect();
        control.disabled = state.get(5).is_truthy();
    }
    // The DOM keeps a valid floating-point number or nothing in a number input's `value`.
    if !control.value.is_empty() {
        control.number = Some(js_sys::Number::parse_float(&control.value));
    }
    control
}

/// The files a file input holds (or held when the snapshot was taken).
fn files(element: &Element, state: &JsValue) -> Vec<JsValue> {
    if !state.is_undefined() {
        return js_sys::Array::from(&js_sys::Array::from(state).get(3)).to_vec();
    }
    let list = element.dyn_ref::<HtmlInputElement>().and_then(HtmlInputElement::files);
    list.map(|list| (0..list.length()).filter_map(|i| list.item(i)).map(JsValue::from).collect()).unwrap_or_default()
}

fn read_form_data(data: &FormData) -> FormInput {
    let mut input = FormInput { fields: Vec::new(), files: Vec::new(), action: None };
    // `[name, value]` pairs: FormData is iterable.
    for entry in js_sys::Array::from(data).iter() {
        let entry = js_sys::Array::from(&entry);
        let (name, value) = (entry.get(0).as_string().unwrap_or_default(), entry.get(1));
        let value = match value.as_string() {
            Some(text) => FieldValue::Text(text),
            None => {
                let file: web_sys::File = value.unchecked_into();
                // An empty file input makes an unnamed empty file: left out, as from a form.
                if file.name().is_empty() && file.size() == 0.0 {
                    continue;
                }
                input.files.push(file.into());
                FieldValue::File(input.files.len() - 1)
            }
        };
        input.fields.push(Field { name, value, many: false });
    }
    input
}
