"""The OpenAPI 3.0 description of the server's routes, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

_UID_SCHEMA = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)*$", "maxLength": 64}
_DICOM_JSON = {"application/dicom+json": {"schema": {"type": "array",
                                                     "items": {"type": "object"}}}}
_MULTIPART = {"multipart/related": {"schema": {"type": "string", "format": "binary"}}}
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_ERRORS = {
    "400": {"description": "Malformed request", "content": _TEXT},
    "401": {"description": "Authentication required", "content": _TEXT},
    "404": {"description": "No such resource", "content": _TEXT},
    "406": {"description": "No acceptable media type", "content": _TEXT},
}


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _UID_SCHEMA}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def _accept(description: str) -> dict[str, Any]:
    return {"name": "Accept", "in": "header", "required": False,
            "schema": {"type": "string"}, "description": description}


_QIDO_PARAMS = [
    _query("includefield", {"type": "string"},
           "Comma-separated keywords or tags to return, or 'all' (PS3.18 §8.3.4.3)"),
    _query("limit", {"type": "integer", "minimum": 0}, "Maximum number of results"),
    _query("offset", {"type": "integer", "minimum": 0}, "Results to skip"),
    _query("fuzzymatching", {"type": "string", "enum": ["true", "false"]},
           "Accepted; fuzzy matching is not performed (a 299 warning says so)"),
    _query("PatientID", {"type": "string"}, "Matching key (any keyword or tag may be used)"),
    _query("PatientName", {"type": "string"}, "Matching key, wildcards * and ?"),
    _query("StudyDate", {"type": "string"}, "Matching key, ranges a-b"),
    _query("Modality", {"type": "string"}, "Matching key"),
    _query("AccessionNumber", {"type": "string"}, "Matching key"),
]


def _op(summary: str, params: list[dict[str, Any]], responses: dict[str, Any],
        **extra: Any) -> dict[str, Any]:
    out = {"summary": summary, "parameters": params,
           "responses": {**responses, **_ERRORS}}
    out.update(extra)
    return out


def openapi_document(base: str) -> dict[str, Any]:
    st, se, inst = _path_param("study"), _path_param("series"), _path_param("instance")
    instances_ok = {"200": {"description": "The instances, one application/dicom part each",
                            "content": _MULTIPART}}
    meta_ok = {"200": {"description": "DICOM JSON with BulkDataURIs", "content": _DICOM_JSON}}
    search_ok = {"200": {"description": "Matching entities (DICOM JSON)",
                         "content": _DICOM_JSON}}
    accept_dicom = _accept('multipart/related; type="application/dicom"[; transfer-syntax=UID]')
    accept_json = _accept("application/dicom+json")
    accept_frames = _accept('multipart/related; type="application/octet-stream" or a '
                            "compressed image media type (PS3.18 Table 8.7.3-5)")
    accept_image = _accept("image/png or image/jpeg")
    frames = {"name": "frames", "in": "path", "required": True,
              "schema": {"type": "string", "pattern": r"^[0-9]+(,[0-9]+)*$"}}
    bulk = {"name": "bulk", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": r"^[0-9A-Fa-f]{8}(/[0-9]+/[0-9A-Fa-f]{8})*$"}}
    window = _query("window", {"type": "string"}, "center,width[,function]")
    quality = _query("quality", {"type": "integer", "minimum": 1, "maximum": 100},
                     "JPEG quality")
    viewport = _query("viewport", {"type": "string", "pattern": r"^[0-9]+(,[0-9]+){1}"
                                   r"(,[0-9]+,[0-9]+,[0-9]+,[0-9]+)?$"},
                      "vw,vh[,sx,sy,sw,sh]: scaled to fit, the aspect kept")
    image_ok = {"200": {"description": "Rendered image",
                        "content": {"image/png": {"schema": {"type": "string",
                                                             "format": "binary"}},
                                    "image/jpeg": {"schema": {"type": "string",
                                                              "format": "binary"}}}}}
    stow_body = {"required": True,
                 "content": {"multipart/related": {"schema": {"type": "string",
                                                              "format": "binary"}}}}
    stow_ok = {code: {"description": text, "content": {"application/dicom+json": {
        "schema": {"type": "object"}}}} for code, text in (
        ("200", "All instances stored"), ("202", "Some instances stored"),
        ("409", "No instance stored"))}
    stow_ok.update({"413": {"description": "Body or part too large", "content": _TEXT},
                    "415": {"description": "Not multipart/related application/dicom",
                            "content": _TEXT}})
    b = base
    i = f"{b}/studies/{{study}}/series/{{series}}/instances/{{instance}}"
    paths: dict[str, Any] = {
        f"{b}/studies": {
            "get": _op("QIDO-RS: search for studies", [accept_json, *_QIDO_PARAMS], search_ok),
            "post": _op("STOW-RS: store instances", [], stow_ok, requestBody=stow_body)},
        f"{b}/series": {"get": _op("QIDO-RS: search for series", [accept_json, *_QIDO_PARAMS],
                                   search_ok)},
        f"{b}/instances": {"get": _op("QIDO-RS: search for instances",
                                      [accept_json, *_QIDO_PARAMS], search_ok)},
        f"{b}/studies/{{study}}": {
            "get": _op("WADO-RS: retrieve a study", [st, accept_dicom], instances_ok),
            "post": _op("STOW-RS: store instances of a study", [st], stow_ok,
                        requestBody=stow_body)},
        f"{b}/studies/{{study}}/series": {
            "get": _op("QIDO-RS: search for series of a study",
                       [st, accept_json, *_QIDO_PARAMS], search_ok)},
        f"{b}/studies/{{study}}/instances": {
            "get": _op("QIDO-RS: search for instances of a study",
                       [st, accept_json, *_QIDO_PARAMS], search_ok)},
        f"{b}/studies/{{study}}/metadata": {
            "get": _op("WADO-RS: metadata of a study", [st, accept_json], meta_ok)},
        f"{b}/studies/{{study}}/series/{{series}}": {
            "get": _op("WADO-RS: retrieve a series", [st, se, accept_dicom], instances_ok)},
        f"{b}/studies/{{study}}/series/{{series}}/metadata": {
            "get": _op("WADO-RS: metadata of a series", [st, se, accept_json], meta_ok)},
        f"{b}/studies/{{study}}/series/{{series}}/instances": {
            "get": _op("QIDO-RS: search for instances of a series",
                       [st, se, accept_json, *_QIDO_PARAMS], search_ok)},
        i: {"get": _op("WADO-RS: retrieve an instance", [st, se, inst, accept_dicom],
                       instances_ok)},
        f"{i}/metadata": {"get": _op("WADO-RS: metadata of an instance",
                                     [st, se, inst, accept_json], meta_ok)},
        f"{i}/frames/{{frames}}": {
            "get": _op("WADO-RS: frames (1-based, comma-separated)",
                       [st, se, inst, frames, accept_frames],
                       {"200": {"description": "One part per frame", "content": _MULTIPART}})},
        f"{i}/bulk/{{bulk}}": {
            "get": _op("WADO-RS: bulk data of an element", [st, se, inst, bulk],
                       {"200": {"description": "The value", "content": _MULTIPART}})},
        f"{i}/rendered": {"get": _op("WADO-RS: rendered instance (first frame)",
                                     [st, se, inst, accept_image, window, quality, viewport],
                                     image_ok)},
        f"{i}/frames/{{frames}}/rendered": {
            "get": _op("WADO-RS: rendered frame", [st, se, inst, frames, accept_image, window,
                                                   quality, viewport], image_ok)},
        f"{b}/studies/{{study}}/thumbnail": {
            "get": _op("WADO-RS: thumbnail of a study", [st, accept_image, viewport],
                       image_ok)},
        f"{b}/studies/{{study}}/series/{{series}}/thumbnail": {
            "get": _op("WADO-RS: thumbnail of a series", [st, se, accept_image, viewport],
                       image_ok)},
        f"{i}/thumbnail": {"get": _op("WADO-RS: thumbnail of an instance (its middle frame)",
                                      [st, se, inst, accept_image, viewport], image_ok)},
        f"{i}/frames/{{frames}}/thumbnail": {
            "get": _op("WADO-RS: thumbnail of a frame", [st, se, inst, frames, accept_image,
                                                         viewport], image_ok)},
        "/wado": {"get": _op("WADO-URI (PS3.18 §9)", [
            {"name": "requestType", "in": "query", "required": True,
             "schema": {"type": "string", "enum": ["WADO"]}},
            {"name": "studyUID", "in": "query", "required": True, "schema": _UID_SCHEMA},
            {"name": "seriesUID", "in": "query", "required": True, "schema": _UID_SCHEMA},
            {"name": "objectUID", "in": "query", "required": True, "schema": _UID_SCHEMA},
            _query("contentType", {"type": "string"}, "application/dicom, image/png, "
                   "image/jpeg"),
            _query("transferSyntax", _UID_SCHEMA, "with application/dicom"),
            _query("frameNumber", {"type": "integer", "minimum": 1}, "1-based frame"),
            _query("windowCenter", {"type": "number"}, "with windowWidth"),
            _query("windowWidth", {"type": "number"}, "with windowCenter"),
            _query("imageQuality", {"type": "integer", "minimum": 1, "maximum": 100}, ""),
        ], {"200": {"description": "The object or a rendered image", "content": {
            "application/dicom": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}})},
    }
    paths["/openapi.json"] = {"get": {"summary": "This description", "responses": {
        "200": {"description": "OpenAPI 3.0 document",
                "content": {"application/json": {"schema": {"type": "object"}}}}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "dicomfast DICOMweb", "version": "1.0",
                 "description": "QIDO-RS, WADO-RS, STOW-RS and WADO-URI (DICOM PS3.18)"},
        "paths": paths,
        "components": {"securitySchemes": {
            "basic": {"type": "http", "scheme": "basic"},
            "bearer": {"type": "http", "scheme": "bearer"}}},
    }
