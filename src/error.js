// The SDK's error: a real Error subclass (instanceof Error, a stack), which a Rust type cannot
// be. Its fields are set by src/error.rs.
export class SkapiError extends Error {
  constructor(message, code, name, statusCode, body) {
    super(message);
    this.name = name;
    this.code = code;
    if (statusCode !== undefined) this.status_code = statusCode;
    if (body !== undefined) this.body = body;
  }
}
