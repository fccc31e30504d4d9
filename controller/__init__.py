"""A controller-runtime-style library for Kubernetes operators in asyncio Python.

It knows Kubernetes and nothing else: client, informers, workqueue, controllers,
manager, leader election, metrics and the usual helpers. See `controller/README.md`.
"""

from controller.apply import create_or_update
from controller.builder import Builder
from controller.cache import Indexer
from controller.client import Client, ObjectList, WatchEvent
from controller.conditions import (
    get_condition,
    is_false,
    is_true,
    remove_condition,
    remove_status_condition,
    set_condition,
    set_status_condition,
)
from controller.config import ClientConfig
from controller.controller import Controller
from controller.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NoKindMatch,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
)
from controller.events import EventRecorder
from controller.finalizers import add_finalizer, has_finalizer, remove_finalizer
from controller.health import HealthServer
from controller.informer import InformerFactory, SharedInformer
from controller.leaderelection import LeaderElector
from controller.manager import Manager, Options
from controller.owners import (
    AlreadyOwned,
    controller_of,
    controller_reference,
    is_owned_by,
    set_controller_reference,
    set_owner_reference,
)
from controller.predicates import (
    ANNOTATIONS_CHANGED,
    GENERATION_CHANGED,
    LABELS_CHANGED,
    RESOURCE_VERSION_CHANGED,
    Predicate,
)
from controller.ratelimit import default_controller_rate_limiter
from controller.reader import CacheReader
from controller.reconcile import Reconciler, Request, Result, TerminalError
from controller.workqueue import RateLimitingQueue, ShutDown

__all__ = [
    "ANNOTATIONS_CHANGED",
    "GENERATION_CHANGED",
    "LABELS_CHANGED",
    "RESOURCE_VERSION_CHANGED",
    "AlreadyExists",
    "AlreadyOwned",
    "ApiError",
    "BadRequest",
    "Builder",
    "CacheReader",
    "Client",
    "ClientConfig",
    "Conflict",
    "Controller",
    "EventRecorder",
    "Forbidden",
    "Gone",
    "HealthServer",
    "Indexer",
    "InformerFactory",
    "Invalid",
    "LeaderElector",
    "Manager",
    "NoKindMatch",
    "NotFound",
    "ObjectList",
    "Options",
    "Predicate",
    "RateLimitingQueue",
    "Reconciler",
    "Request",
    "Result",
    "ServerError",
    "SharedInformer",
    "ShutDown",
    "TerminalError",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "WatchEvent",
    "add_finalizer",
    "controller_of",
    "controller_reference",
    "create_or_update",
    "default_controller_rate_limiter",
    "get_condition",
    "has_finalizer",
    "is_false",
    "is_owned_by",
    "is_true",
    "remove_condition",
    "remove_finalizer",
    "remove_status_condition",
    "set_condition",
    "set_controller_reference",
    "set_owner_reference",
    "set_status_condition",
]
