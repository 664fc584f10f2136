# One node of 智能小城 (compose.yaml starts two behind nginx).
FROM python:3.11-slim
WORKDIR /srv/app
COPY . .
# Editable, as in development: the widget's files and bot/data stay beside the code.
RUN pip install --no-cache-dir -e ".[postgres,redis]" && cp -r faq /srv/faq
ENV XIAOCHENG_BIND=0.0.0.0:8000 \
    XIAOCHENG_INSTANCE_PATH=/srv/instance \
    XIAOCHENG_FAQ_DIR=/srv/faq
EXPOSE 8000
CMD ["gunicorn", "-c", "gunicorn.conf.py"]
