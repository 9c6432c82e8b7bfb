// The API from the browser: the key from session storage in every request, errors as ApiError.

const KEY_STORAGE = "shenava.apiKey";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const session = {
  get key() { return sessionStorage.getItem(KEY_STORAGE) || ""; },
  set key(value) {
    if (value) sessionStorage.setItem(KEY_STORAGE, value);
    else sessionStorage.removeItem(KEY_STORAGE);
  },
  tenant: "",
};

function headers(extra = {}) {
  return { Authorization: `Bearer ${session.key}`, ...extra };
}

// Every dialect words its errors differently: {"error"}, {"detail"}, {"error": {"message"}}.
function reason(body, status) {
  if (body && typeof body === "object") {
    const found = body.error?.message || body.error || body.detail || body.message;
    if (found) return typeof found === "string" ? found : JSON.stringify(found);
  }
  return `the server answered ${status}`;
}

async function failure(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (response.status === 401 || response.status === 403) window.dispatchEvent(new Event("shenava:unauthorized"));
  return new ApiError(response.status, reason(body, response.status));
}

export async function request(method, path, { json, params, raw } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const init = { method, headers: headers() };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(0, "the server cannot be reached");
  }
  if (!response.ok) throw await failure(response);
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

export const get = (path, params) => request("GET", path, { params });
export const post = (path, json, params) => request("POST", path, { json, params });
export const blob = async (path) => (await request("GET", path, { raw: true })).blob();

// A multipart upload with progress (fetch cannot report upload progress; XMLHttpRequest can).
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("Authorization", `Bearer ${session.key}`);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, reason(body, xhr.status)));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "the upload was interrupted")));
    xhr.send(form);
  });
}
