"""Unit tests of the Azure fake's contract checker (tests/sandbox/azure_fake.py).

Run by `cargo test --test azure_fake` (fake_contract_checker_unit_tests_pass) with the sandbox's Python:
    python -m unittest discover -s tests/sandbox -p 'test_azure_fake.py'
They prove that the checker reads the official examples and the Graph CSDL subset as intended: a
checker that accepted everything would make every contract test pass vacuously.
"""
import copy
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import azure_fake as fake  # noqa: E402

fake.load_specs()
SUB = "00000000-0000-0000-0000-000000000000"
REGISTRY_PUT = {"location": "eastus", "sku": {"name": "Basic"}, "tags": {"managed-by": "pushpool"},
                "properties": {"adminUserEnabled": False}}


def world():
    tenant = fake.Tenant("11111111-1111-1111-1111-111111111111", "t.onmicrosoft.com")
    return tenant, fake.Subscription(SUB, "s", tenant)


class Specs(unittest.TestCase):
    def test_each_example_is_loaded_with_the_api_version_its_name_carries(self):
        for op, name in fake.EXAMPLES.items():
            example = fake.SPECS["examples"][op]
            self.assertEqual(example.api_version, name.rsplit(".", 2)[-2], op)
            self.assertIsInstance(example.request, dict)
            self.assertIn("200", example.responses)
        routes = {op: version for _, _, op, _, version, _ in fake.ARM_ROUTES}
        for op, example in fake.SPECS["examples"].items():
            self.assertEqual(routes[op], example.api_version, f"{op} is pinned to its example's api-version")

    def test_vendored_specs_are_the_shared_ones(self):
        shared = Path(__file__).resolve().parents[3] / "shared" / "specs" / "azure"
        vendored = Path(__file__).resolve().parent / "specs" / "azure"
        if not shared.is_dir():
            self.skipTest("no ../shared beside the repository")
        for path in shared.rglob("*"):
            if path.is_file():
                self.assertEqual(path.read_bytes(), (vendored / path.relative_to(shared)).read_bytes(), path.name)

    def test_csdl_types_fold_in_their_base_types_and_actions_their_parameters(self):
        app = fake.SPECS["graph_types"]["application"]
        self.assertEqual(app.properties["id"], "Edm.String")  # from entity
        self.assertEqual(app.properties["deletedDateTime"], "Edm.DateTimeOffset")  # from directoryObject
        self.assertEqual(app.properties["passwordCredentials"], "Collection(graph.passwordCredential)")
        self.assertIn("owners", app.navigation)
        self.assertEqual(fake.SPECS["graph_types"]["servicePrincipal"].properties["appOwnerOrganizationId"], "Edm.Guid")
        self.assertEqual(fake.SPECS["graph_actions"][("addPassword", "application")]["parameters"],
                         {"passwordCredential": "graph.passwordCredential"})
        self.assertEqual(fake.SPECS["graph_sets"], {"applications": "application", "servicePrincipals": "servicePrincipal"})


class ArmRequests(unittest.TestCase):
    def test_the_bodies_pushpool_sends_pass(self):
        self.assertEqual(fake.check_arm_request("registries.create", REGISTRY_PUT), [])
        self.assertEqual(fake.check_arm_request("resourceGroups.createOrUpdate", {"location": "eastus", "tags": {"a": "b"}}), [])
        self.assertEqual(fake.check_arm_request("userAssignedIdentities.createOrUpdate", {"location": "eastus", "tags": {}}), [])
        body = {"properties": {"roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{fake.ACR_PULL}",
                               "principalId": "ce2ce14e-85d7-4629-bdbc-454d0519d987", "principalType": "ServicePrincipal"}}
        self.assertEqual(fake.check_arm_request("roleAssignments.create", body), [])

    def test_unknown_fields_wrong_types_and_missing_required_fields_are_violations(self):
        body = copy.deepcopy(REGISTRY_PUT)
        body["properties"]["adminUserEnabled"] = "false"
        body["properties"]["zoneRedundancy"] = "Enabled"  # in the response model, not in the example's request
        body["kind"] = "x"
        del body["location"]
        problems = fake.check_arm_request("registries.create", body)
        self.assertEqual(len(problems), 4, problems)
        self.assertTrue(any(p.startswith("properties.adminUserEnabled: expected boolean") for p in problems), problems)
        self.assertTrue(any(p.startswith("location: required") for p in problems), problems)

    def test_tags_are_a_map_of_strings_and_only_where_the_reference_has_them(self):
        problems = fake.check_arm_request("resourceGroups.createOrUpdate", {"location": "eastus", "tags": {"n": 1}})
        self.assertEqual(len(problems), 1, problems)
        problems = fake.check_arm_request("roleAssignments.create", {"tags": {}, "properties": {"roleDefinitionId": "x", "principalId": "y"}})
        self.assertEqual(problems, ["tags: not a field of the official example"])

    def test_a_server_computed_field_sent_back_is_a_violation(self):
        body = {**REGISTRY_PUT, "properties": {"adminUserEnabled": False, "loginServer": "x.azurecr.io"}}
        self.assertEqual(fake.check_arm_request("registries.create", body),
                         ["properties.loginServer: not a field of the official example"])


class ArmResponses(unittest.TestCase):
    def test_the_fakes_own_answers_match_the_examples(self):
        tenant, sub = world()
        rg = fake.ResourceGroup(sub, "rg", "eastus", {"managed-by": "pushpool"})
        registry = fake.Registry(sub, "rg", "prefect123abc", "eastus", {"a": "b"}, state="Creating")
        identity = fake.Identity(sub, "rg", "prefect-acr-identity", "eastus", {}, "p" * 36, "c" * 36)
        assignment = fake.RoleAssignment(rg.id, "05c5a614-a7d6-4502-b150-c2fb455033ff", "/x", "p", "ServicePrincipal")
        for op, value in (("resourceGroups.createOrUpdate", rg.json()), ("registries.create", registry.json()),
                          ("userAssignedIdentities.createOrUpdate", identity.json()), ("roleAssignments.create", assignment.json())):
            for status in (200, 201):
                self.assertEqual(fake.check_arm_response(op, status, value), [], op)

    def test_a_missing_or_extra_or_retyped_field_in_an_answer_is_a_violation(self):
        _, sub = world()
        value = fake.Registry(sub, "rg", "prefect123abc", "eastus", {}).json()
        del value["properties"]["loginServer"]
        value["properties"]["status"] = "ok"  # the example says null
        value["etag"] = "x"
        problems = fake.check_arm_response("registries.create", 200, value)
        self.assertEqual(len(problems), 3, problems)
        self.assertTrue(any("loginServer: in the official example's response, missing" in p for p in problems), problems)

    def test_array_elements_are_checked_against_the_examples_first_element(self):
        self.assertEqual(fake.shape_problems({"a": [{"b": 1}, {"b": "x"}]}, {"a": [{"b": 2}]}), ["a[1].b: expected number, got string"])
        self.assertEqual(fake.shape_problems({"a": [1, "x"]}, {"a": []}), [])


class GraphRequests(unittest.TestCase):
    def test_an_application_create_and_patch_as_pushpool_sends_them_pass(self):
        body = {"displayName": "prefect-aci-push-pool-app", "tags": ["managed-by=pushpool"], "notes": "pool=a",
                "signInAudience": "AzureADMyOrg"}
        self.assertEqual(fake.check_graph_request(("entity", "application"), body), [])
        self.assertEqual(fake.check_graph_request(("entity", "application"), {"tags": [], "notes": None}), [])
        self.assertEqual(fake.check_graph_request(("entity", "servicePrincipal"), {"appId": "x", "tags": ["a"]}), [])

    def test_unknown_computed_navigation_and_mistyped_properties_are_violations(self):
        body = {"displayName": "x", "appId": "y", "owners": [], "tags": "managed-by", "colour": "red", "isDisabled": "no"}
        problems = fake.check_graph_request(("entity", "application"), body)
        self.assertEqual(len(problems), 5, problems)
        self.assertIn("appId: computed by the service (application), sent by the client", problems)
        self.assertIn("colour: unknown property of application", problems)

    def test_add_password_takes_only_its_parameter_and_no_computed_field(self):
        ok = {"passwordCredential": {"displayName": "pushpool", "endDateTime": "2027-11-30T00:00:00Z"}}
        self.assertEqual(fake.check_graph_request(("action", "addPassword", "application"), ok), [])
        bad = {"passwordCredential": {"secretText": "s", "keyId": "not-a-guid", "endDateTime": "next year"}, "extra": 1}
        problems = fake.check_graph_request(("action", "addPassword", "application"), bad)
        self.assertEqual(len(problems), 5, problems)  # extra, secretText, keyId computed, keyId not a GUID, the date

    def test_remove_password_is_checked_against_the_fakes_reading_of_the_reference(self):
        kind = ("reference", {"keyId": "Edm.Guid"})
        self.assertEqual(fake.check_graph_request(kind, {"keyId": "23341ce4-8bc6-471e-868b-3d3850f909b6"}), [])
        self.assertEqual(len(fake.check_graph_request(kind, {"keyId": "k", "id": 1})), 2)


class GraphResponses(unittest.TestCase):
    def test_the_fakes_own_answers_match_the_csdl(self):
        tenant, _ = world()
        app = fake.Application(tenant, "prefect-aci-push-pool-app", properties={"tags": ["a"], "notes": "n"})
        app.passwords.append(fake.Password("23341ce4-8bc6-471e-868b-3d3850f909b6", "x", fake.new_secret_text(), fake.now(), fake.now()))
        self.assertEqual(fake.check_graph_response("application", app.json()), [])
        self.assertEqual(fake.check_graph_response("application", fake.graph_collection("applications", [app.json()]), True), [])
        self.assertEqual(fake.check_graph_response("passwordCredential", app.passwords[0].json(True)), [])
        sp = fake.ServicePrincipal(app.app_id, app.display_name)
        self.assertEqual(fake.check_graph_response("servicePrincipal", sp.json(tenant)), [])

    def test_a_bad_answer_is_caught(self):
        tenant, _ = world()
        value = fake.Application(tenant, "x").json()
        value["createdDateTime"] = "today"
        value["passwordCredentials"] = [{"keyId": 5}]
        value["secret"] = "s"
        self.assertEqual(len(fake.check_graph_response("application", value)), 3)


class Paging(unittest.TestCase):
    BASE, PATH = "http://127.0.0.1:1", "/graph/v1.0/applications"

    def follow(self, listing, tenant, query):
        """The pages of `listing` for `query`, following each next link's token."""
        pages = []
        while True:
            page = fake.graph_page(listing, tenant, self.BASE, self.PATH, query)
            pages.append(page["value"])
            link = page.get("@odata.nextLink")
            if link is None:
                return pages
            self.assertTrue(link.startswith(self.BASE + self.PATH + "?"), link)
            query = {**query, "$skiptoken": link.split("$skiptoken=")[1]}

    def test_pages_are_small_by_default_and_top_sets_their_size_up_to_999(self):
        tenant, _ = world()
        listing = fake.Listing("applications", [({"id": str(i)}, True) for i in range(5)])
        self.assertEqual([len(p) for p in self.follow(listing, tenant, {})], [2, 2, 1])
        self.assertEqual([len(p) for p in self.follow(listing, tenant, {"$top": "3"})], [3, 2])
        for bad in ("0", "1000", "x"):
            with self.assertRaises(fake.GraphError):
                fake.graph_page(listing, tenant, self.BASE, self.PATH, {"$top": bad})
        tenant.faults["page_size"] = 5
        self.assertEqual([len(p) for p in self.follow(listing, tenant, {})], [5])

    def test_a_filtered_page_scans_a_window_so_it_may_be_empty_and_still_link_on(self):
        tenant, _ = world()
        listing = fake.Listing("applications", [({"id": str(i)}, i == 4) for i in range(5)])
        pages = self.follow(listing, tenant, {"$filter": "x"})
        self.assertEqual(pages, [[], [], [{"id": "4"}]])

    def test_a_token_is_good_only_for_the_query_it_continues(self):
        tenant, _ = world()
        listing = fake.Listing("applications", [({"id": str(i)}, True) for i in range(5)])
        token = fake.graph_page(listing, tenant, self.BASE, self.PATH, {})["@odata.nextLink"].split("$skiptoken=")[1]
        for query in ({"$skiptoken": "forged"}, {"$skiptoken": token, "$filter": "x"}):
            with self.assertRaises(fake.GraphError):
                fake.graph_page(listing, tenant, self.BASE, self.PATH, query)
        self.assertEqual(fake.graph_page(listing, tenant, self.BASE, self.PATH, {"$skiptoken": token})["value"], [{"id": "2"}, {"id": "3"}])


class Replication(unittest.TestCase):
    def test_each_request_naming_a_lagging_object_uses_up_one_unit_and_objects_made_before_never_lag(self):
        tenant, _ = world()
        before = fake.Application(tenant, "before")
        tenant.created_by_graph(before, before.app_id)
        tenant.faults.update({"object_not_found": 2, "app_not_replicated": 1})
        app = fake.Application(tenant, "new")
        tenant.created_by_graph(app, app.app_id)
        self.assertEqual([tenant.replicated(tenant.lagging, app.id) for _ in range(3)], [False, False, True])
        self.assertEqual([tenant.replicated(tenant.unbacked, app.app_id) for _ in range(2)], [False, True])
        self.assertTrue(tenant.replicated(tenant.lagging, before.id))


class Secrets(unittest.TestCase):
    def test_client_secrets_have_entras_form_and_the_hint_is_their_first_three_characters(self):
        texts = {fake.new_secret_text() for _ in range(50)}
        self.assertEqual(len(texts), 50)
        for text in texts:
            self.assertEqual(len(text), 40)
            self.assertEqual(text[4:6], "Q~")
        password = fake.Password("k", "d", next(iter(texts)), fake.now(), fake.now())
        self.assertEqual(password.json()["hint"], password.secret_text[:3])
        self.assertIsNone(password.json()["secretText"], "listed secrets never carry their text")

    def test_token_audiences_follow_the_resource_path(self):
        self.assertEqual(fake.audience_of_resource("http://127.0.0.1:1/arm/"), "arm")
        self.assertEqual(fake.audience_of_resource("http://127.0.0.1:1/graph"), "graph")
        self.assertEqual(fake.audience_of_resource("https://management.azure.com/"), "foreign")


if __name__ == "__main__":
    unittest.main()
