//! A form as the page shows it: its controls' state read from the DOM — the page's form, or the
//! detached copy the npm package's loader made of it when it was submitted before the wasm had
//! loaded (js/wrapper.mjs). Which controls count and what each adds is
//! `skapi_core::form::Control`'s.

use crate::js;
use skapi_core::form::{Control, ControlKind, Field, FieldValue, InputReads};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    Element, FormData, HtmlButtonElement, HtmlFormElement, HtmlInputElement, HtmlOptionElement, HtmlSelectElement, HtmlTextAreaElement, SubmitEvent,
};

/// The key the loader marks its copies with (js/wrapper.mjs): `{form, submitter}`.
const SNAPSHOT: &str = "__skapiForm";

/// A form's fields in document order, its chosen files (which `FieldValue::File` numbers) and
/// its `action` resolved against the page.
pub struct FormInput {
    pub fields: Vec<Field>,
    pub files: Vec<JsValue>,
    pub action: Option<String>,
}

/// Where a form's fields are.
pub enum Source {
    /// A form in the page (or the loader's copy of one), with the button that submitted it.
    Form(HtmlFormElement, Option<web_sys::HtmlElement>),
    Data(FormData),
}

/// The form behind `input`: a submit event (its default prevented here, synchronously), a
/// form, `FormData` or a loader's copy of a form (`{__skapiForm, form, submitter}`); `None`
/// for anything else.
pub fn source(input: &JsValue) -> Option<Source> {
    if let Some(event) = input.dyn_ref::<SubmitEvent>() {
        event.prevent_default();
        return Some(Source::Form(event.target()?.dyn_into().ok()?, event.submitter()));
    }
    if let Some(form) = input.dyn_ref::<HtmlFormElement>() {
        return Some(Source::Form(form.clone(), None));
    }
    if let Some(data) = input.dyn_ref::<FormData>() {
        return Some(Source::Data(data.clone()));
    }
    if !(input.is_object() && js::get(input, SNAPSHOT).is_truthy()) {
        return None;
    }
    Some(Source::Form(js::get(input, "form").dyn_into().ok()?, js::get(input, "submitter").dyn_into().ok()))
}

/// The fields of the form behind `input` (see [`source`]).
pub fn read(input: &JsValue) -> Option<FormInput> {
    Some(match source(input)? {
        Source::Form(form, submitter) => read_form(&form, submitter),
        Source::Data(data) => read_form_data(&data),
    })
}

/// The elements `form.elements` lists (image buttons are never among them).
const LISTED: &str = "button,fieldset,input:not([type=image i]),object,output,select,textarea";

fn read_form(form: &HtmlFormElement, submitter: Option<web_sys::HtmlElement>) -> FormInput {
    let mut input = FormInput { fields: Vec::new(), files: Vec::new(), action: None };
    let elements = form.elements();
    // Whether a control is disabled (itself, or by a disabled fieldset) is asked of each only
    // when the form holds something disabled or has controls outside it (tied with `form=`):
    // two selector queries per form rather than one match per control.
    let inside = form.query_selector_all(LISTED).map_or(0, |found| found.length());
    let ask = inside != elements.length() || form.query_selector(":disabled").map_or(true, |found| found.is_some());
    let disabled = |element: &Element| ask && element.matches(":disabled").unwrap_or(false);
    for i in 0..elements.length() {
        if let Some(element) = elements.item(i) {
            add(&mut input, &element, false, &disabled);
        }
    }
    // HTML's rule: of the buttons, only the one that submitted the form counts.
    if let Some(submitter) = submitter {
        add(&mut input, &submitter, true, &|element: &Element| element.matches(":disabled").unwrap_or(false));
    }
    // `form.action` is the attribute resolved against the page's URL.
    input.action = form.has_attribute("action").then(|| form.action());
    input
}

/// Adds a control's fields, and its files to the form's. Reads from the page only what decides
/// them, through each element type's own properties (each read crosses into JavaScript): an
/// unnamed or disabled control adds nothing, nor does one that holds no value (a fieldset).
fn add(input: &mut FormInput, element: &Element, submitter: bool, disabled: &dyn Fn(&Element) -> bool) {
    let named = |name: String| (!name.is_empty() && !disabled(element)).then_some(name);
    let mut files = None;
    let control = if let Some(el) = element.dyn_ref::<HtmlInputElement>() {
        let Some(name) = named(el.name()) else {
            return;
        };
        let kind = el.type_();
        let reads = InputReads::of(&kind, submitter);
        let mut control = Control { name, ..Control::default() };
        if reads.value {
            control.value = el.value();
        }
        if reads.checked {
            control.checked = el.checked();
            control.has_value_attribute = element.has_attribute("value");
        }
        if reads.number && !control.value.is_empty() {
            // The DOM keeps a valid floating-point number or nothing in `value`.
            control.number = Some(js_sys::Number::parse_float(&control.value));
        }
        if reads.files {
            control.multiple = el.multiple();
            files = el.files();
            control.files = files.as_ref().map_or(0, |f| f.length() as usize);
        }
        control.kind = Some(ControlKind::Input(kind));
        control
    } else if let Some(el) = element.dyn_ref::<HtmlSelectElement>() {
        // Other controls are few beside the inputs: their name through the attribute.
        let Some(name) = named(element.get_attribute("name").unwrap_or_default()) else {
            return;
        };
        let mut control = Control { name, kind: Some(ControlKind::Select), multiple: el.multiple(), ..Control::default() };
        let options = el.selected_options();
        for i in 0..options.length() {
            if let Some(option) = options.item(i) {
                control.selected.push(option.unchecked_into::<HtmlOptionElement>().value());
            }
        }
        control
    } else if let Some(el) = element.dyn_ref::<HtmlTextAreaElement>() {
        let Some(name) = named(element.get_attribute("name").unwrap_or_default()) else {
            return;
        };
        Control { name, kind: Some(ControlKind::TextArea), value: el.value(), ..Control::default() }
    } else if let (true, Some(el)) = (submitter, element.dyn_ref::<HtmlButtonElement>()) {
        let Some(name) = named(element.get_attribute("name").unwrap_or_default()) else {
            return;
        };
        Control { name, value: el.value(), ..Control::default() }
    } else {
        return;
    };
    let control = if submitter { Control { kind: Some(ControlKind::Submitter), ..control } } else { control };
    control.fields(input.files.len(), &mut input.fields);
    if let Some(files) = files {
        input.files.extend((0..files.length()).filter_map(|i| files.item(i)).map(JsValue::from));
    }
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
