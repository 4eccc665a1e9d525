"""Shared by the GraphQL tests: post a document the way a client does."""

from __future__ import annotations

from typing import Any

GET_PROGRAM = """
query GetProgram($id: ID!) {
  getProgram(id: $id) {
    id
    name
    status
    modules {
      id
      name
      type
      performanceMetrics
    }
    executions(first: 10, filter: { status: { eq: COMPLETED } }) {
      edges {
        node {
          id
          input
          output
          duration
          metrics
        }
      }
    }
  }
}
"""

RUN_PROGRAM = """
mutation RunProgram($programId: ID!, $input: JSON!) {
  runProgram(programId: $programId, input: $input) {
    result {
      output
      trace
      metrics
    }
    errors {
      field
      message
    }
  }
}
"""


def gql(client: Any, query: str, variables: dict[str, Any] | None = None, **extra: Any) -> Any:
    return client.post("/graphql/", {"query": query, "variables": variables or {}}, format="json", **extra)


def data(client: Any, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = gql(client, query, variables)
    assert response.status_code == 200, response.content
    body = response.json()
    assert "errors" not in body, body
    return body["data"]
