"""Promote and roll back buttons in the admin: rendered, POSTed to their admin URLs, through the services."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from cognitive.models import ActiveVersionChange, OptimizationRun, Program, ProgramStatus
from cognitive.services.optimization_requests import optimization_start
from cognitive.services.programs import program_archive
from cognitive.services.versions import program_promote
from tests.factories import ProgramVersionFactory, StaffFactory, UserFactory
from tests.optimization_helpers import make_dataset, make_program

pytestmark = pytest.mark.django_db

LM_URL = "http://127.0.0.1:9/v1"  # never called: nothing here runs the program


@pytest.fixture
def program(user):
    return make_program(user, LM_URL)


@pytest.fixture
def versions(program):
    return ProgramVersionFactory(program=program, number=1), ProgramVersionFactory(program=program, number=2)


@pytest.fixture
def admin(client, staff):
    client.force_login(staff)
    return client


def rollback_url(program):
    return reverse("admin:cognitive_program_rollback", args=[program.pk])


def promote_url(version):
    return reverse("admin:cognitive_programversion_promote", args=[version.pk])


def change_url(obj):
    return reverse(f"admin:cognitive_{obj._meta.model_name}_change", args=[obj.pk])


def active(program):
    return Program.objects.get(pk=program.pk).active_version


def shown(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def test_the_version_page_has_a_promote_button_posting_to_its_admin_url(admin, versions):
    v1, _ = versions
    content = admin.get(change_url(v1)).content.decode()
    assert "Promote this version" in content
    form_start = content.index(f'action="{promote_url(v1)}"')
    assert 'method="post"' in content[form_start - 40 : form_start]
    assert "csrfmiddlewaretoken" in content[form_start : content.index("</form>", form_start)]


def test_promote_switches_the_active_version_and_says_so(admin, program, versions):
    v1, v2 = versions
    response = admin.post(promote_url(v2))
    assert response.status_code == 302 and response["Location"] == change_url(v2)
    assert active(program) == v2
    change = ActiveVersionChange.objects.get(program=program)
    assert change.kind == "promote" and change.to_version == v2 and change.actor is not None

    page = admin.get(change_url(v2))
    assert ("success", f"{program}: v2 is active") in shown(page)
    # The active version has nothing to promote; the other one still does.
    assert "Promote this version" not in page.content.decode()
    assert "Promote this version" in admin.get(change_url(v1)).content.decode()


def test_the_program_page_rolls_back_to_the_previous_version(admin, program, versions):
    v1, v2 = versions
    assert "Roll back to the previous version" not in admin.get(change_url(program)).content.decode()
    admin.post(promote_url(v1))
    admin.post(promote_url(v2))

    page = admin.get(change_url(program)).content.decode()
    assert "Roll back to the previous version (v1)" in page
    assert f'action="{rollback_url(program)}"' in page
    # django_fsm's transition buttons are still there.
    assert 'name="_fsm_transition_to"' in page and 'value="archive"' in page

    response = admin.post(rollback_url(program), follow=True)
    assert response.redirect_chain == [(change_url(program), 302)]
    assert active(program) == v1
    assert ("success", f"{program}: rolled back to v1") in shown(response)
    assert "Roll back to the previous version (the modules as declared)" in response.content.decode()

    response = admin.post(rollback_url(program), follow=True)
    assert active(program) is None
    assert ("success", f"{program}: rolled back to the modules as declared") in shown(response)


def test_an_illegal_rollback_is_an_error_message_and_changes_nothing(admin, program, versions):
    response = admin.post(rollback_url(program), follow=True)
    assert response.status_code == 200
    assert ("error", f"{program}: there is no earlier active version to roll back to") in shown(response)
    assert active(program) is None
    assert not ActiveVersionChange.objects.exists()


def test_promoting_into_an_archived_program_is_an_error_message(admin, program, versions):
    v1, _ = versions
    program_archive(program=program)
    assert "Promote this version" not in admin.get(change_url(v1)).content.decode()
    response = admin.post(promote_url(v1), follow=True)
    assert response.status_code == 200
    assert ("error", f"{program}: cannot promote a version of a program that is archived") in shown(response)
    assert active(program) is None
    response = admin.post(rollback_url(program), follow=True)
    assert ("error", f"{program}: cannot roll back a program that is archived") in shown(response)


def test_the_run_page_promotes_its_result_version_and_comes_back(admin, program, versions):
    _, v2 = versions
    run = optimization_start(
        program=program, owner=program.owner, optimizer="labeled_few_shot", dataset=make_dataset(program),
        metric="exact_match",
    )
    OptimizationRun.objects.filter(pk=run.pk).update(result_version=v2)
    page = admin.get(change_url(run)).content.decode()
    assert "Promote this version (v2)" in page and f'value="{change_url(run)}"' in page

    response = admin.post(promote_url(v2), {"next": change_url(run)})
    assert response.status_code == 302 and response["Location"] == change_url(run)
    assert active(program) == v2
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.OPTIMIZING
    assert "Promote this version" not in admin.get(change_url(run)).content.decode()
    # An outside `next` is ignored.
    admin.post(reverse("admin:cognitive_program_rollback", args=[program.pk]))
    response = admin.post(promote_url(v2), {"next": "https://evil.example/"})
    assert response["Location"] == change_url(v2)


def test_the_urls_take_only_posts(admin, program, versions):
    v1, _ = versions
    assert admin.get(promote_url(v1)).status_code == 405
    assert admin.get(rollback_url(program)).status_code == 405
    assert active(program) is None


def test_the_admin_actions_are_still_there(admin, program):
    optimization_start(
        program=program, owner=program.owner, optimizer="labeled_few_shot", dataset=make_dataset(program),
        metric="exact_match",
    )
    changelist = admin.get(reverse("admin:cognitive_program_changelist")).content.decode()
    assert 'value="rollback_programs"' in changelist
    runs = admin.get(reverse("admin:cognitive_optimizationrun_changelist")).content.decode()
    assert 'value="promote_result"' in runs


def test_non_staff_and_anonymous_users_cannot_reach_the_urls(client, program, versions):
    v1, v2 = versions
    program_promote(program=program, version=v1)
    for user in (UserFactory(), None):
        client.logout()
        if user is not None:
            client.force_login(user)
        for url in (promote_url(v2), rollback_url(program)):
            response = client.post(url)
            assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), url
    assert active(program) == v1
    assert ActiveVersionChange.objects.count() == 1


def test_staff_without_change_permission_get_403_and_no_buttons(client, program, versions):
    v1, _ = versions
    viewer = StaffFactory(is_superuser=False)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_program", "view_programversion"])
    )
    client.force_login(viewer)
    assert "Promote this version" not in client.get(change_url(v1)).content.decode()
    assert client.post(promote_url(v1)).status_code == 403
    assert client.post(rollback_url(program)).status_code == 403
    assert active(program) is None


def test_the_urls_are_csrf_protected(staff, program, versions):
    v1, _ = versions
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff)
    assert strict.post(promote_url(v1)).status_code == 403
    assert strict.post(rollback_url(program)).status_code == 403
    assert active(program) is None

    page = strict.get(change_url(v1))
    token = page.content.decode().split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    assert strict.post(promote_url(v1), {"csrfmiddlewaretoken": token}).status_code == 302
    assert active(program) == v1
