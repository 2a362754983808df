"""Typed app-state keys of the district service."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaProducer

from services.common.clock import Clock
from services.common.config import Settings
from services.common.consumer import BatchConsumer
from services.common.outbox import Publisher
from services.district.cases.store import CaseStore
from services.district.deadlines.timers import TimerWorker
from services.district.decisions import Decisions
from services.district.intake.parked import ParkedSweeper

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
POOL = web.AppKey("pool", asyncpg.Pool)
PRODUCER = web.AppKey("producer", AIOKafkaProducer)
DECISIONS = web.AppKey("decisions", Decisions)
PUBLISHER = web.AppKey("publisher", Publisher)
CONSUMER = web.AppKey("consumer", BatchConsumer)
STORE = web.AppKey("store", CaseStore)
TIMERS = web.AppKey("timers", TimerWorker)
PARKED = web.AppKey("parked", ParkedSweeper)
#: the KPI ranking's weights (deploy/reference/kpi_weights.csv), read at start
KPI_WEIGHTS: web.AppKey[Mapping[str, float]] = web.AppKey("kpi_weights")
