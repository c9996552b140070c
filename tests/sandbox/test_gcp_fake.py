"""Unit tests of the GCP fake's contract checker (tests/sandbox/gcp_fake.py) and of its key files.

Run by `cargo test --test gcp_fake` (fake_contract_checker_unit_tests_pass) with the sandbox's Python:
    python -m unittest discover -s tests/sandbox -p 'test_gcp_fake.py'
They prove that the checker reads the discovery documents as intended: a checker that accepted
everything would make every contract test pass vacuously.
"""
import base64
import json
import sys
import unittest
from pathlib import Path

from multidict import MultiDict

sys.path.insert(0, str(Path(__file__).parent))
import gcp_fake as fake  # noqa: E402

APIS = fake.load_apis(fake.discovery_dir())


def method(service, http, path):
    matched = APIS[service].match(http, path)
    assert matched, f"no method for {http} {path}"
    return matched


class Routing(unittest.TestCase):
    def test_flat_path_picks_the_most_specific_method_and_plus_name_spans_slashes(self):
        m, params = method("iam", "GET", "v1/projects/p/serviceAccounts/a@p.iam.gserviceaccount.com/keys/abc")
        self.assertEqual(m.id, "iam.projects.serviceAccounts.keys.get")
        self.assertEqual(params["name"], "projects/p/serviceAccounts/a@p.iam.gserviceaccount.com/keys/abc")
        m, _ = method("iam", "GET", "v1/projects/p/serviceAccounts/a@p.iam.gserviceaccount.com/keys")
        self.assertEqual(m.id, "iam.projects.serviceAccounts.keys.list")

    def test_custom_verbs_are_distinct_methods(self):
        self.assertEqual(method("cloudresourcemanager", "POST", "v3/projects/p:setIamPolicy")[0].id,
                         "cloudresourcemanager.projects.setIamPolicy")
        self.assertEqual(method("serviceusage", "GET", "v1/projects/p/services:batchGet")[0].id,
                         "serviceusage.services.batchGet")
        self.assertIsNone(APIS["cloudresourcemanager"].match("POST", "v3/projects/p:frobnicate"))

    def test_get_iam_policy_is_not_a_write(self):
        self.assertFalse(method("cloudresourcemanager", "POST", "v3/projects/p:getIamPolicy")[0].write)
        self.assertTrue(method("cloudresourcemanager", "POST", "v3/projects/p:setIamPolicy")[0].write)


class RequestBodies(unittest.TestCase):
    def check(self, service, http, path, body):
        m, params = method(service, http, path)
        return fake.check_request_body(APIS[service], m, body, params)

    def test_a_valid_create_passes(self):
        problems, _ = self.check("iam", "POST", "v1/projects/p/serviceAccounts",
                                 {"accountId": "prefect-cloud-run", "serviceAccount": {"displayName": "x", "description": "y"}})
        self.assertEqual(problems, [])

    def test_unknown_and_output_only_fields_are_violations(self):
        problems, _ = self.check("iam", "POST", "v1/projects/p/serviceAccounts",
                                 {"accountId": "abcdef", "bogus": 1, "serviceAccount": {"email": "e", "uniqueId": "1"}})
        self.assertTrue(any("bogus: unknown field" in p for p in problems), problems)
        self.assertTrue(any("serviceAccount.email: output-only" in p for p in problems), problems)
        self.assertTrue(any("serviceAccount.uniqueId: output-only" in p for p in problems), problems)

    def test_types_are_checked_through_refs(self):
        problems, _ = self.check("cloudresourcemanager", "POST", "v3/projects/p:setIamPolicy",
                                 {"policy": {"version": "three", "etag": "not base64!", "bindings": [{"role": 5, "members": "user:a"}]}})
        self.assertEqual(len(problems), 4, problems)

    def test_enums_by_name_or_proto_number_and_nothing_else(self):
        path = "v1/projects/p/serviceAccounts/a@p.iam.gserviceaccount.com/keys"
        problems, body = self.check("iam", "POST", path, {"privateKeyType": 2, "keyAlgorithm": "KEY_ALG_RSA_2048"})
        self.assertEqual(problems, [])
        self.assertEqual(body["privateKeyType"], "TYPE_GOOGLE_CREDENTIALS_FILE")
        problems, _ = self.check("iam", "POST", path, {"privateKeyType": "JSON"})
        self.assertEqual(len(problems), 1, problems)
        problems, body = self.check("artifactregistry", "POST", "v1/projects/p/locations/l/repositories", {"format": 8})
        self.assertEqual((problems, body["format"]), ([], "PYTHON"))  # proto number, not list position

    def test_path_fields_repeated_in_the_body_must_match_the_path(self):
        path = "v1/projects/p/serviceAccounts"
        self.assertEqual(self.check("iam", "POST", path, {"name": "projects/p", "accountId": "abcdef"})[0], [])
        self.assertEqual(len(self.check("iam", "POST", path, {"name": "projects/q", "accountId": "abcdef"})[0]), 1)

    def test_a_get_takes_no_body(self):
        self.assertEqual(len(self.check("cloudresourcemanager", "GET", "v3/projects/p", {"x": 1})[0]), 1)


class Queries(unittest.TestCase):
    def query(self, service, http, path, pairs):
        m, _ = method(service, http, path)
        return fake.check_query(APIS[service], m, MultiDict(pairs))

    def test_declared_repeatable_and_system_parameters_pass(self):
        problems, query = self.query("iam", "GET", "v1/projects/p/serviceAccounts/a/keys",
                                     [("keyTypes", "USER_MANAGED"), ("keyTypes", "2"), ("$alt", "json;enum-encoding=int")])
        self.assertEqual(problems, [])
        self.assertEqual(query["keyTypes"], ["USER_MANAGED", "SYSTEM_MANAGED"])

    def test_undeclared_and_bad_values_are_violations(self):
        problems, _ = self.query("artifactregistry", "GET", "v1/projects/p/locations/l/repositories/r/dockerImages",
                                 [("pageSize", "one"), ("limit", "1")])
        self.assertEqual(len(problems), 2, problems)
        problems, _ = self.query("iam", "GET", "v1/projects/p/serviceAccounts/a/keys", [("keyTypes", "ALL")])
        self.assertEqual(len(problems), 1, problems)


class Responses(unittest.TestCase):
    def check(self, service, ref, value, numbers=False):
        checker = fake.Checker(APIS[service], "response", numbers)
        return checker.check_ref(value, ref), checker.problems

    def test_int64_must_be_a_string_and_datetimes_rfc3339(self):
        _, problems = self.check("artifactregistry", "Repository", {"name": "n", "sizeBytes": 0, "createTime": "yesterday"})
        self.assertEqual(len(problems), 2, problems)

    def test_packed_any_messages_are_checked_against_their_type(self):
        op = {"name": "operations/x", "done": True,
              "response": {"@type": "type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse",
                           "services": [{"state": "ON"}]}}
        _, problems = self.check("serviceusage", "Operation", op)
        self.assertEqual(len(problems), 1, problems)

    def test_enum_encoding_int_answers_proto_numbers(self):
        value, problems = self.check("artifactregistry", "Repository", {"format": "DOCKER", "mode": "STANDARD_REPOSITORY"}, True)
        self.assertEqual((problems, value), ([], {"format": 1, "mode": 1}))


class Paging(unittest.TestCase):
    """The one paging rule (AIP-158) every paged list method of the fake answers by."""

    IMAGES = "v1/projects/p/locations/l/repositories/r/dockerImages"

    def page(self, path, items, project, **query):
        m, params = method("artifactregistry" if "dockerImages" in path else "iam", "GET", path)
        ctx = fake.Ctx(APIS["artifactregistry" if "dockerImages" in path else "iam"], m, params,
                       {k: [str(v)] for k, v in query.items()}, {}, project)
        return fake.paged(ctx, "dockerImages", items)

    def walk(self, items, project, **query):
        pages, token = [], None
        while True:
            page = self.page(self.IMAGES, items, project, **query, **({"pageToken": token} if token else {}))
            pages.append(page.get("dockerImages", []))
            token = page.get("nextPageToken")
            if not token:
                return pages

    def project(self):
        return fake.Project("proj-123456", "1", {})

    def test_a_list_that_asks_no_size_pages_by_two_and_the_tokens_reach_every_item_once(self):
        items = list(range(7))
        pages = self.walk(items, self.project())
        self.assertEqual(pages, [[0, 1], [2, 3], [4, 5], [6]])

    def test_the_asked_size_is_honoured_up_to_the_documented_maximum(self):
        project = self.project()
        self.assertEqual([len(p) for p in self.walk(list(range(7)), project, pageSize=5)], [5, 2])
        self.assertEqual(fake.page_maximum(method("artifactregistry", "GET", self.IMAGES)[0]), 1000)
        self.assertEqual(fake.page_maximum(method("iam", "GET", "v1/projects/p/serviceAccounts")[0]), 100)
        self.assertEqual([len(p) for p in self.walk(list(range(1500)), project, pageSize=5000)], [1000, 500])
        project.page_size = 3
        self.assertEqual([len(p) for p in self.walk(list(range(7)), project)], [3, 3, 1])

    def test_a_token_of_another_method_or_made_up_is_invalid_argument(self):
        foreign = fake.page_token(method("iam", "GET", "v1/projects/p/serviceAccounts")[0], 2)
        for token in (foreign, "2", "not base64!"):
            with self.assertRaises(fake.GoogleError) as refused:
                self.page(self.IMAGES, list(range(7)), self.project(), pageToken=token)
            self.assertEqual((refused.exception.code, refused.exception.status), (400, "INVALID_ARGUMENT"))

    def test_a_page_may_be_empty_with_a_token_that_resumes_where_it_was(self):
        project = self.project()
        project.faults = {"empty_pages": 2}
        self.assertEqual(self.walk(list(range(3)), project, pageSize=1), [[], [], [0], [1], [2]])
        self.assertEqual(self.walk([], project), [[]], "an empty list is one page without a token")

    def test_methods_without_a_page_token_answer_whole(self):
        keys, _ = method("iam", "GET", "v1/projects/p/serviceAccounts/a/keys")
        self.assertNotIn("pageToken", keys.spec["parameters"])
        with self.assertRaises(AssertionError):
            self.page("v1/projects/p/serviceAccounts/a/keys", list(range(7)), self.project())


class KeyFiles(unittest.TestCase):
    def test_key_file_is_what_google_auth_and_prefect_gcp_accept(self):
        info = fake.service_account_key_file("proj-123456", "sa-name@proj-123456.iam.gserviceaccount.com", "1" * 21, "ab" * 20)
        self.assertEqual(info["type"], "service_account")
        self.assertTrue(info["private_key"].startswith("-----BEGIN PRIVATE KEY-----"))
        from google.oauth2 import service_account
        credentials = service_account.Credentials.from_service_account_info(info)  # parses the RSA key
        self.assertEqual(credentials.service_account_email, info["client_email"])
        self.assertTrue(credentials.sign_bytes(b"x"))
        from prefect_gcp import GcpCredentials
        block = GcpCredentials(service_account_info=info, project="proj-123456")
        self.assertEqual(block.service_account_info.get_secret_value()["private_key_id"], "ab" * 20)
        self.assertTrue(base64.b64encode(json.dumps(info).encode()))


class Keys(unittest.TestCase):
    def test_an_expired_key_stays_listed_with_its_past_end(self):
        sa = type("Sa", (), {"name": "projects/p/serviceAccounts/a@p.iam.gserviceaccount.com"})()
        key = fake.Key("ab" * 20)
        self.assertEqual(key.json(sa)["validBeforeTime"], "9999-12-31T23:59:59Z")
        key.expires = fake.now() - fake.timedelta(days=1)
        listed = key.json(sa)["validBeforeTime"]
        self.assertLess(listed, fake.stamp())
        self.assertNotIn("disabled", key.json(sa), "expired is not disabled")


if __name__ == "__main__":
    unittest.main()
