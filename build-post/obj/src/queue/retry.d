build-post/obj/src/queue/retry.o: src/queue/retry.c src/queue/retry.h
src/queue/retry.h:
