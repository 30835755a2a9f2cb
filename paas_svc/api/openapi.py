"""The OpenAPI 3.1 document, built from the same endpoint table as the server's routes."""

from __future__ import annotations

import re

from paas_svc import __version__

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "hint": {"type": "string"}},
    "required": ["error", "message"],
}


def _service_schema(service_fields: dict[str, str], service_statuses) -> dict:
    properties = {}
    for name, kind in service_fields.items():
        types = kind.split("|")
        properties[name] = {"type": types if len(types) > 1 else types[0]}
    properties["status"]["enum"] = list(service_statuses)
    return {"type": "object", "properties": properties, "required": list(service_fields)}


def build_document(endpoints, service_fields: dict[str, str], service_statuses) -> dict:
    """The document for `endpoints` (routes.ENDPOINTS); `service_fields` (name -> JSON type, "a|b"
    for either) and `service_statuses` make the Service schema (routes.SERVICE_FIELDS, SERVICE_STATUSES)."""
    paths: dict[str, dict] = {}
    for endpoint in endpoints:
        parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                      for name in re.findall(r"{(\w+)}", endpoint.path)]
        parameters += [{"name": name, "in": "query", "required": False, "description": text, "schema": {"type": "string"}}
                       for name, text in endpoint.query.items()]
        responses = {}
        for code, text in sorted(endpoint.responses.items()):
            media = endpoint.produces if code < 300 else "application/json"
            schema = {"$ref": "#/components/schemas/Error"} if code >= 400 else {}
            if code < 300 and endpoint.returns:
                ref = {"$ref": "#/components/schemas/Service"}
                schema = {"type": "array", "items": ref} if endpoint.returns.endswith("[]") else ref
            if media == "application/octet-stream":
                schema = {"type": "string", "format": "binary"}
            responses[str(code)] = {"description": text, "content": {media: {"schema": schema}}}
        operation = {
            "operationId": endpoint.handler.__name__,
            "summary": endpoint.summary,
            "parameters": parameters,
            "responses": responses,
        }
        if endpoint.role is not None:
            operation["security"] = [{"bearer": []}]
            operation["x-paas-role"] = endpoint.role
        if endpoint.upload:
            operation["requestBody"] = {"required": True, "content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}}}
        if endpoint.body is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": endpoint.body}}}
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "paas-svc API", "version": __version__,
                 "description": "Managed services over HTTP. `{org}` is the one org of this profile (`paas serve --org`)."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR_SCHEMA, "Service": _service_schema(service_fields, service_statuses)},
        },
    }
