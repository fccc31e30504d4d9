"""`send_channel_message` and `schedule_task`: files for the IPC bridge to publish."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent import ipcclient
from agent.protocol import ChannelMessage, ScheduleRequest
from agent.tools.base import Tool, ToolArgs, ToolContext, ToolError


class SendChannelMessageArgs(ToolArgs):
    channel: Literal["whatsapp", "telegram", "discord", "slack"] = Field(
        description="The channel to send to"
    )
    text: str = Field(description="The message text")
    chat_id: str | None = Field(
        default=None,
        alias="chatId",
        description="The chat to send to; defaults to the chat this task came from",
    )


class ScheduleTaskArgs(ToolArgs):
    name: str = Field(description="Name of the schedule")
    action: Literal["create", "update", "suspend", "resume", "delete"]
    schedule: str | None = Field(default=None, description="Cron expression, e.g. '0 9 * * *'")
    task: str | None = Field(default=None, description="The task the scheduled run performs")


async def send_channel_message(args: SendChannelMessageArgs, context: ToolContext) -> str:
    if not args.text.strip():
        raise ToolError("text is required")
    chat_id = args.chat_id
    if chat_id is None and args.channel == context.config.source_channel:
        chat_id = context.config.source_chat_id
    await ipcclient.send_channel_message(
        ChannelMessage(channel=args.channel, chat_id=chat_id, text=args.text)
    )
    return f"Message queued for {args.channel}" + (f" chat {chat_id}" if chat_id else "")


async def schedule_task(args: ScheduleTaskArgs, context: ToolContext) -> str:
    if not args.name.strip():
        raise ToolError("name is required")
    if args.action == "create" and not (args.schedule and args.task):
        raise ToolError("action create needs both schedule and task")
    await ipcclient.request_schedule(
        ScheduleRequest(name=args.name, action=args.action, schedule=args.schedule, task=args.task)
    )
    return f"Schedule request queued: {args.action} {args.name}"


SEND_CHANNEL_MESSAGE = Tool(
    "send_channel_message",
    "Send a message to a chat channel (whatsapp, telegram, discord or slack).",
    SendChannelMessageArgs,
    send_channel_message,
)
SCHEDULE_TASK = Tool(
    "schedule_task",
    "Create, update, suspend, resume or delete a recurring scheduled task for this agent.",
    ScheduleTaskArgs,
    schedule_task,
)
