"""Typed app-state keys of the street service."""

from __future__ import annotations

import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaProducer

from services.common.config import Settings
from services.common.consumer import BatchConsumer
from services.common.outbox import Publisher
from services.district.deadlines.workcal import WorkCalendar

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
PRODUCER = web.AppKey("producer", AIOKafkaProducer)
PUBLISHER = web.AppKey("publisher", Publisher)
CONSUMER = web.AppKey("consumer", BatchConsumer)
#: the units this desk serves
UNITS = web.AppKey("units", list[str])
#: the government calendar the tasks' countdowns count office time on (as the district does)
CALENDAR = web.AppKey("calendar", WorkCalendar)
