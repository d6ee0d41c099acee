"""The OpenAPI documentation as a reader meets it: tags in the order of an applicant's
journey, an example for every request and answer, the error codes of every operation and
the units of every quantity. `hooks.postprocess` puts them into the generated schema."""
