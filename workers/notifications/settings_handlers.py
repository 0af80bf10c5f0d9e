"""The settings side of notifications: a user's preferences, the admins' templates, the export.

Preferences and the export are the user's own (or an admin's): anyone else is told the
user is not found, as the users and orders services answer. Templates are for admins
only; an edit that does not render with the template's sample values is refused with
the part at fault (`subject`, `text` or `html`), so what is stored always renders.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from contracts.notifications import (
    TRANSACTIONAL,
    Channel,
    GetNotificationPreferences,
    GetTemplate,
    ListTemplates,
    NotificationPreferencesView,
    PreviewTemplate,
    RenderedMessage,
    SetNotificationPreferences,
    SetTemplate,
    TemplateBody,
    TemplateList,
    TemplateView,
)
from contracts.privacy import ExportUserData, PersonalData
from kernel.tokens import Actor
from workers.notifications import templates
from workers.notifications.settings_repository import SettingsRepository
from workers.runtime.context import HandlerContext
from workers.runtime.errors import DomainError, invalid, not_found


class SettingsHandlers:
    """The notification settings' handlers: preferences, templates, the export (wired in app.py)."""

    # --- preferences -------------------------------------------------------------------------------

    async def get_preferences(
        self, query: GetNotificationPreferences, ctx: HandlerContext
    ) -> NotificationPreferencesView:
        _self_or_admin(ctx, query.user_id)
        choices, updated_at = await SettingsRepository(ctx.session).preferences(query.user_id)
        return NotificationPreferencesView(
            user_id=query.user_id, preferences=choices, email_always=TRANSACTIONAL, updated_at=updated_at
        )

    async def set_preferences(
        self, cmd: SetNotificationPreferences, ctx: HandlerContext
    ) -> NotificationPreferencesView:
        _self_or_admin(ctx, cmd.user_id)
        now = datetime.now(UTC)
        await SettingsRepository(ctx.session).save_preferences(cmd.user_id, cmd.preferences, now)
        return NotificationPreferencesView(
            user_id=cmd.user_id, preferences=cmd.preferences, email_always=TRANSACTIONAL, updated_at=now
        )

    # --- templates (admins) ------------------------------------------------------------------------

    async def list_templates(self, query: ListTemplates, ctx: HandlerContext) -> TemplateList:
        _admin(ctx)
        found = await templates.stored_all(ctx.session)
        return TemplateList(items=tuple(_view(templates.DEFAULTS[ident], current) for ident, current in found.items()))

    async def get_template(self, query: GetTemplate, ctx: HandlerContext) -> TemplateView:
        _admin(ctx)
        spec = _spec(query.key, query.channel)
        return _view(spec, await templates.stored(ctx.session, spec.key, spec.channel))

    async def set_template(self, cmd: SetTemplate, ctx: HandlerContext) -> TemplateView:
        actor = _admin(ctx)
        spec = _spec(cmd.key, cmd.channel)
        _validated(spec, cmd.body)
        saved = await templates.save(
            ctx.session, spec.key, spec.channel, cmd.body, by=actor.user_id, now=datetime.now(UTC)
        )
        return _view(spec, saved)

    async def preview_template(self, query: PreviewTemplate, ctx: HandlerContext) -> RenderedMessage:
        _admin(ctx)
        spec = _spec(query.key, query.channel)
        body = query.body or await templates.load(ctx.session, spec.key, spec.channel)
        return _validated(spec, body)

    # --- personal data -----------------------------------------------------------------------------

    async def export_user_data(self, query: ExportUserData, ctx: HandlerContext) -> PersonalData:
        """The user's preferences and what was sent to them: for the user or an admin."""
        _self_or_admin(ctx, query.user_id)
        repo = SettingsRepository(ctx.session)
        choices, updated_at = await repo.preferences(query.user_id)
        data: dict[str, Any] = {
            "preferences": {**choices.model_dump(), "updated_at": updated_at},
            **await repo.personal_records(query.user_id),
        }
        return PersonalData(service="notifications", data=data)


# --- checks and views --------------------------------------------------------------------------


def _self_or_admin(ctx: HandlerContext, user_id: UUID) -> Actor:
    """Someone else's settings do not exist for the caller: an id alone tells a prober nothing."""
    actor = ctx.require_actor()
    if actor.role != "admin" and actor.user_id != user_id:
        raise not_found("user")
    return actor


def _admin(ctx: HandlerContext) -> Actor:
    actor = ctx.require_actor()
    if actor.role != "admin":
        raise DomainError("forbidden", "only an admin may manage notification templates")
    return actor


def _spec(key: str, channel: Channel) -> templates.TemplateSpec:
    spec = templates.DEFAULTS.get((key, channel))
    if spec is None:
        raise not_found("template")
    return spec


def _validated(spec: templates.TemplateSpec, body: TemplateBody) -> RenderedMessage:
    """The body rendered with the sample values, or a 422 naming the part that failed."""
    try:
        return templates.validate(spec.key, spec.channel, body)
    except templates.TemplateError as exc:
        raise invalid(exc.part, exc.message) from None


def _view(spec: templates.TemplateSpec, current: templates.StoredTemplate) -> TemplateView:
    return TemplateView(
        key=spec.key,
        channel=spec.channel,
        category=spec.category,
        description=spec.description,
        variables=spec.variables,
        body=current.body,
        updated_at=current.updated_at,
        updated_by=current.updated_by,
    )
