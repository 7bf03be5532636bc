"""The OpenAI Images API surface: `/v1/images/generations`, `/v1/images/edits`
and `/v1/models`, as thin as the plugin shim and calling the same dataplane
handlers. Each file has one job: `fields` maps OpenAI's request fields to a
GenerateRequest, `answers` shapes OpenAI's responses and stream events,
`errors` shapes OpenAI's errors, `surface` routes and calls the service."""
