"""PySpark connection for Ibis: local master, a cluster master URL, or a Spark Connect address.

``engine.spark.master`` (``local[2]``, ``yarn``, ``spark://host:7077``) or ``engine.spark.connect_url``
(``sc://host:15002``) in panhuo.yaml; ``engine.spark.conf`` passes any Spark setting through.
Session time zone is Asia/Shanghai, ANSI mode stays as Spark defaults it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import ibis

if TYPE_CHECKING:
    from ibis.backends.pyspark import Backend

    from panhuo.config import SparkSettings

__all__ = ["connect", "session"]


def session(settings: SparkSettings, tmp_dir: Path):  # -> pyspark.sql.SparkSession
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        from panhuo.errors import ConfigError

        raise ConfigError("engine spark needs pyspark: pip install 'panhuo[spark]'") from exc
    if settings.connect_url:
        builder = SparkSession.builder.remote(settings.connect_url)
    else:
        local = tmp_dir / "spark"
        local.mkdir(parents=True, exist_ok=True)
        builder = (
            SparkSession.builder.master(settings.master)
            .config("spark.driver.memory", settings.driver_memory)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.local.dir", str(local))
            .config("spark.sql.warehouse.dir", str(local / "warehouse"))
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={local}")
        )
    builder = builder.appName(settings.app_name).config("spark.sql.session.timeZone", "Asia/Shanghai")
    for key, value in settings.conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def connect(settings: SparkSettings, tmp_dir: Path) -> Backend:
    spark = session(settings, tmp_dir)
    spark.sparkContext.setLogLevel("ERROR") if not settings.connect_url else None
    return ibis.pyspark.connect(spark)
