"""GraphQL at /graphql/ (strawberry-graphql-django): the same selectors, services and policies as REST."""
